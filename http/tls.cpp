#include "http/tls.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdexcept>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace vipportd::http {

namespace ssl = boost::asio::ssl;

std::string rfc2253_name(const void* x509_name) {
    if (x509_name == nullptr) {
        return {};
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (!bio) {
        return {};
    }
    // XN_FLAG_RFC2253 is what `-nameopt RFC2253` selects (openssl apps/lib/apps.c).
    if (X509_NAME_print_ex(bio.get(), static_cast<const X509_NAME*>(x509_name), 0,
                           XN_FLAG_RFC2253) < 0) {
        return {};
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

namespace {

std::string openssl_reason(const boost::system::error_code& ec) {
    std::string s = ec.message();
    // Asio reports the first queued error; anything behind it is noise for the next call.
    ERR_clear_error();
    return s;
}

void load(const char* what,
          const std::filesystem::path& file,
          const std::function<void(boost::system::error_code&)>& step) {
    boost::system::error_code ec;
    step(ec);
    if (ec) {
        throw std::runtime_error("tls." + std::string(what) + " " + file.string() +
                                 ": cannot load: " + openssl_reason(ec));
    }
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const agent::TlsConfig& config) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    // TLS 1.2 is the oldest version without known protocol breaks (RFC 8996 deprecates 1.0/1.1);
    // renegotiation only adds attack surface to a request/response API.
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION);
    // An encrypted key would make OpenSSL prompt on the terminal; fail instead.
    ctx->set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    load("cert_file", config.cert_file,
         [&](auto& ec) { ctx->use_certificate_chain_file(config.cert_file.string(), ec); });
    load("key_file", config.key_file, [&](auto& ec) {
        ctx->use_private_key_file(config.key_file.string(), ssl::context::pem, ec);
    });
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        ERR_clear_error();
        throw std::runtime_error("tls.key_file " + config.key_file.string() +
                                 ": does not match the certificate in " +
                                 config.cert_file.string());
    }
    if (config.client_ca_file.empty()) {
        return ctx;
    }
    load("client_ca_file", config.client_ca_file,
         [&](auto& ec) { ctx->load_verify_file(config.client_ca_file.string(), ec); });
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // Sessions resumed with a client certificate need an id context (SSL_CTX_set_session_id_context
    // (3): otherwise resumption fails with "session id context uninitialized").
    static constexpr unsigned char kSessionContext[] = "vipportd";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext,
                                   sizeof kSessionContext - 1);
    if (!config.allowed_subjects.empty()) {
        ctx->set_verify_callback([allowed = config.allowed_subjects](bool preverified,
                                                                     ssl::verify_context& vc) {
            X509_STORE_CTX* store = vc.native_handle();
            // Depth 0 is the client's own certificate; the CAs above it are not pinned.
            if (!preverified || X509_STORE_CTX_get_error_depth(store) != 0) {
                return preverified;
            }
            X509* cert = X509_STORE_CTX_get_current_cert(store);
            const std::string subject =
                rfc2253_name(cert != nullptr ? X509_get_subject_name(cert) : nullptr);
            if (std::find(allowed.begin(), allowed.end(), subject) != allowed.end()) {
                return true;
            }
            spdlog::warn("tls: client certificate subject \"{}\" is not in tls.allowed_subjects",
                         subject);
            X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
            return false;
        });
    }
    return ctx;
}

}  // namespace vipportd::http
