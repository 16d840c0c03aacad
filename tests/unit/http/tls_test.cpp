// TLS and mTLS listeners on loopback (port 0) with certificates made at test time by the openssl
// CLI: a test CA, a server certificate for 127.0.0.1/::1, client certificates for an allowed and
// an unlisted subject, and one with the allowed subject from a rogue CA. The client is Asio's
// SSL stream verifying the server's name.

#include "http/tls.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "http/server.hpp"
#include "http_fakes.hpp"

namespace vipportd::http {
namespace {

namespace net = boost::asio;
using test::endpoint;
using test::IoThread;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

// Field by field, so that dependencies added to RouterDeps later keep their defaults.
Router make_router(std::shared_ptr<agent::SnapshotProvider> snapshots) {
    RouterDeps deps;
    deps.snapshots = std::move(snapshots);
    deps.registry = [] { return test::sample_registry(); };
    deps.auth = std::make_shared<AcceptAll>();
    return Router(std::move(deps));
}

const std::string usedports_request =
    "GET /zstack/v1/vips/vip-1/usedports?protocol=TCP HTTP/1.1\r\n"
    "Host: vipportd\r\nAuthorization: OAuth t\r\n\r\n";
const std::string healthz_request = "GET /healthz HTTP/1.1\r\nHost: vipportd\r\n\r\n";
const std::string ok_tcp =
    R"({"inventories":[{"uuid":"vip-1","protcol":"TCP","protocol":"TCP","usedPorts":["20","21","22","23","80","8080"]}]})";
const std::string allowed_subject = "CN=zstack-mn,O=Example";

std::string run(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    char buf[512];
    for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) {
        out.append(buf, n);
    }
    const int status = pclose(p);
    if (status != 0) {
        throw std::runtime_error("command failed (" + std::to_string(status) + "): " + command);
    }
    return out;
}

/// The certificates, made once for the whole suite in a fresh temporary directory.
struct Certs {
    fs::path dir;
    fs::path file(const std::string& name) const { return dir / name; }

    Certs() {
        char tmpl[] = "/tmp/vipportd-tls-XXXXXX";
        const char* d = mkdtemp(tmpl);
        if (d == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        dir = d;
        const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        const std::string q = "'" + dir.string() + "'";
        std::ofstream(dir / "server.ext") << "basicConstraints=critical,CA:FALSE\n"
                                             "extendedKeyUsage=serverAuth\n"
                                             "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n";
        std::ofstream(dir / "client.ext") << "basicConstraints=critical,CA:FALSE\n"
                                             "extendedKeyUsage=clientAuth\n";
        std::string script = "set -e; cd " + q + "; exec 2>openssl.log;";
        for (const char* ca : {"ca", "rogue-ca"}) {
            script += "openssl req -x509 -new " + key + " -keyout " + ca + ".key -out " + ca +
                      ".crt -subj '/CN=vipportd test CA' -days 2;";
        }
        struct Leaf {
            const char* name;
            const char* subject;
            const char* ca;
            const char* ext;
        };
        int serial = 1;
        for (const Leaf& l : {Leaf{"server", "/CN=localhost", "ca", "server.ext"},
                              Leaf{"mn", "/O=Example/CN=zstack-mn", "ca", "client.ext"},
                              Leaf{"other", "/O=Example/CN=intruder", "ca", "client.ext"},
                              Leaf{"rogue", "/O=Example/CN=zstack-mn", "rogue-ca", "client.ext"},
                              Leaf{"server2", "/CN=localhost", "ca", "server.ext"}}) {
            const std::string n = l.name;
            script += "openssl req -new " + key + " -keyout " + n + ".key -out " + n +
                      ".csr -subj '" + l.subject + "';";
            script += "openssl x509 -req -in " + n + ".csr -CA " + l.ca + ".crt -CAkey " + l.ca +
                      ".key -set_serial " + std::to_string(serial++) + " -days 2 -extfile " +
                      l.ext + " -out " + n + ".crt;";
        }
        run(script);  // popen: /bin/sh -c
    }
    ~Certs() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

const Certs& certs() {
    static const Certs c;
    return c;
}

/// An HTTPS client that verifies the server against the test CA, optionally with a certificate.
class TlsClient {
  public:
    explicit TlsClient(const std::string& cert_name = "") : ctx_(ssl::context::tls_client) {
        ctx_.load_verify_file(certs().file("ca.crt").string());
        ctx_.set_verify_mode(ssl::verify_peer);
        if (!cert_name.empty()) {
            ctx_.use_certificate_chain_file(certs().file(cert_name + ".crt").string());
            ctx_.use_private_key_file(certs().file(cert_name + ".key").string(), ssl::context::pem);
        }
    }

    /// Connects and handshakes; the error of the first step that failed.
    boost::system::error_code connect(const tcp::endpoint& ep) {
        stream_.emplace(ioc_, ctx_);
        stream_->set_verify_callback(ssl::host_name_verification(ep.address().to_string()));
        boost::system::error_code ec;
        stream_->next_layer().connect(ep, ec);
        if (!ec) {
            stream_->handshake(ssl::stream_base::client, ec);
        }
        return ec;
    }

    /// One request and its response on the connection; the error of the step that failed.
    boost::system::error_code exchange(const std::string& request, Response& res) {
        boost::system::error_code ec;
        net::write(*stream_, net::buffer(request), ec);
        if (!ec) {
            bhttp::read(*stream_, buffer_, res, ec);
        }
        return ec;
    }

    /// connect + exchange; the response, or nullopt with the failing error in ec.
    std::optional<Response> get(const tcp::endpoint& ep,
                                const std::string& request,
                                boost::system::error_code& ec) {
        ec = connect(ep);
        Response res;
        if (!ec) {
            ec = exchange(request, res);
        }
        if (ec) {
            return std::nullopt;
        }
        return res;
    }

    ssl::stream<tcp::socket>& stream() { return *stream_; }

  private:
    net::io_context ioc_;
    ssl::context ctx_;
    std::optional<ssl::stream<tcp::socket>> stream_;
    boost::beast::flat_buffer buffer_;
};

class TlsTest : public ::testing::Test {
  protected:
    TlsTest()
        : provider(std::make_shared<test::FakeProvider>(test::sample_snapshot())),
          router(make_router(provider)) {
        options.tls.enabled = true;
        options.tls.cert_file = certs().file("server.crt");
        options.tls.key_file = certs().file("server.key");
        // The clients here stay open until the test ends: a stopped server's lingering close
        // (waiting for the client's close_notify or EOF) must not take seconds.
        options.close_linger = std::chrono::milliseconds(100);
    }

    void mtls(std::vector<std::string> subjects = {}) {
        options.tls.client_ca_file = certs().file("ca.crt");
        options.tls.allowed_subjects = std::move(subjects);
    }

    std::shared_ptr<test::FakeProvider> provider;
    Router router;
    ServerOptions options;
    net::io_context ioc;
};

TEST_F(TlsTest, ServesKeepAliveRequestsOverTls) {
    Server server(ioc, {endpoint("127.0.0.1"), endpoint("::1")}, router, options);
    server.start();
    IoThread io(ioc);
    for (const auto& ep : server.local_endpoints()) {
        TlsClient client;
        ASSERT_FALSE(client.connect(ep)) << ep;
        Response res;
        ASSERT_FALSE(client.exchange(usedports_request, res));
        EXPECT_EQ(res.result(), bhttp::status::ok);
        EXPECT_EQ(res.body(), ok_tcp);
        EXPECT_TRUE(res.keep_alive());
        res = {};
        ASSERT_FALSE(client.exchange(healthz_request, res));  // same TLS connection
        EXPECT_EQ(res.body(), "ok");
    }
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, PlainHttpToATlsPortGetsAPlainTextAnswerAndClose) {
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    net::io_context cio;
    tcp::socket s(cio);
    s.connect(server.local_endpoints()[0]);
    net::write(s, net::buffer(usedports_request));
    boost::beast::flat_buffer buffer;
    Response res;
    bhttp::read(s, buffer, res);
    EXPECT_EQ(res.result(), bhttp::status::bad_request);
    EXPECT_EQ(res.body(), "this port speaks TLS: use https://");
    EXPECT_FALSE(res.keep_alive());
    char c = 0;
    boost::system::error_code ec;
    s.read_some(net::buffer(&c, 1), ec);
    EXPECT_EQ(ec, net::error::eof);
    EXPECT_EQ(provider->calls, 0);
    s.close();
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, OnlyTheListedListenersSpeakTls) {
    options.tls.listeners = {endpoint("::1")};
    Server server(ioc, {endpoint("127.0.0.1"), endpoint("::1")}, router, options);
    server.start();
    IoThread io(ioc);
    const auto eps = server.local_endpoints();
    net::io_context cio;
    tcp::socket plain(cio);
    plain.connect(eps[0]);
    net::write(plain, net::buffer(healthz_request));
    boost::beast::flat_buffer buffer;
    Response res;
    bhttp::read(plain, buffer, res);
    EXPECT_EQ(res.body(), "ok");  // 127.0.0.1 is not listed: plain HTTP
    TlsClient client;
    boost::system::error_code ec;
    const auto tls_res = client.get(eps[1], healthz_request, ec);
    ASSERT_TRUE(tls_res) << ec.message();
    EXPECT_EQ(tls_res->body(), "ok");
    plain.close();
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, MtlsRejectsAClientWithoutCertificate) {
    mtls();
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    TlsClient client;
    boost::system::error_code ec;
    EXPECT_FALSE(client.get(server.local_endpoints()[0], usedports_request, ec));
    EXPECT_TRUE(ec);  // TLS 1.3: the client learns it on its first read (alert 116)
    EXPECT_EQ(provider->calls, 0);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, MtlsRejectsACertificateFromAnotherCa) {
    mtls();
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    TlsClient client("rogue");  // the allowed subject, but not signed by client_ca_file
    boost::system::error_code ec;
    EXPECT_FALSE(client.get(server.local_endpoints()[0], usedports_request, ec));
    EXPECT_TRUE(ec);
    EXPECT_EQ(provider->calls, 0);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, MtlsWithoutAllowListAcceptsAnyVerifiedClient) {
    mtls();
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    TlsClient client("other");
    boost::system::error_code ec;
    const auto res = client.get(server.local_endpoints()[0], usedports_request, ec);
    ASSERT_TRUE(res) << ec.message();
    EXPECT_EQ(res->body(), ok_tcp);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, MtlsAllowListAcceptsOnlyListedSubjects) {
    // The documented way to learn a certificate's subject gives the string to list.
    EXPECT_EQ(run("openssl x509 -noout -subject -nameopt RFC2253 -in '" +
                  certs().file("mn.crt").string() + "'"),
              "subject=" + allowed_subject + "\n");
    mtls({"CN=someone-else", allowed_subject});
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    boost::system::error_code ec;
    TlsClient other("other");
    EXPECT_FALSE(other.get(server.local_endpoints()[0], usedports_request, ec));
    EXPECT_TRUE(ec);
    EXPECT_EQ(provider->calls, 0);

    TlsClient mn("mn");
    const auto res = mn.get(server.local_endpoints()[0], usedports_request, ec);
    ASSERT_TRUE(res) << ec.message();
    EXPECT_EQ(res->result(), bhttp::status::ok);
    EXPECT_EQ(res->body(), ok_tcp);
    EXPECT_EQ(provider->calls, 1);
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, StalledHandshakeIsClosedAfterTheHandshakeTimeout) {
    options.handshake_timeout = 100ms;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    net::io_context cio;
    for (const std::string& start : {std::string(), std::string("\x16\x03\x01", 3)}) {
        tcp::socket s(cio);
        s.connect(server.local_endpoints()[0]);
        if (!start.empty()) {
            net::write(s, net::buffer(start));  // the first bytes of a record, then nothing
        }
        const auto t0 = std::chrono::steady_clock::now();
        char c = 0;
        boost::system::error_code ec;
        s.read_some(net::buffer(&c, 1), ec);
        EXPECT_TRUE(ec == net::error::eof || ec == net::error::connection_reset) << ec.message();
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 90ms);
    }
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, SlowRequestOverTlsGets408) {
    options.request_timeout = 100ms;
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    TlsClient client;
    ASSERT_FALSE(client.connect(server.local_endpoints()[0]));
    net::write(client.stream(), net::buffer(std::string("GET /healthz HTTP/1.1\r\nHo")));
    boost::beast::flat_buffer buffer;
    Response res;
    bhttp::read(client.stream(), buffer, res);
    EXPECT_EQ(res.result(), bhttp::status::request_timeout);
    EXPECT_FALSE(res.keep_alive());
    server.stop();
    EXPECT_TRUE(io.join());
}

TEST_F(TlsTest, StopClosesIdleTlsConnections) {
    Server server(ioc, {endpoint("127.0.0.1")}, router, options);
    server.start();
    IoThread io(ioc);
    TlsClient client;
    ASSERT_FALSE(client.connect(server.local_endpoints()[0]));
    Response res;
    ASSERT_FALSE(client.exchange(healthz_request, res));
    EXPECT_EQ(server.connection_count(), 1U);
    server.stop();
    EXPECT_TRUE(io.join());
    EXPECT_EQ(server.connection_count(), 0U);
}

TEST_F(TlsTest, UnloadableFilesFailStartNamingTheFile) {
    const auto start_fails_with = [&](const std::string& needle) {
        Server server(ioc, {endpoint("127.0.0.1")}, router, options);
        try {
            server.start();
            ADD_FAILURE() << "start() succeeded";
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
        EXPECT_TRUE(server.local_endpoints().empty());
    };
    options.tls.cert_file = certs().file("missing.crt");
    start_fails_with("tls.cert_file " + certs().file("missing.crt").string() + ": cannot load");
    options.tls.cert_file = certs().file("server2.crt");  // not server.key's certificate
    start_fails_with("tls.key_file " + certs().file("server.key").string());
    options.tls.cert_file = certs().file("server.crt");
    options.tls.client_ca_file = certs().file("nothing-here.pem");
    start_fails_with("tls.client_ca_file");
}

}  // namespace
}  // namespace vipportd::http
