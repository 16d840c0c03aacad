#pragma once
// TLS for the listeners ([tls]): the server's OpenSSL context, built once at startup, and the
// client-certificate policy of mTLS (verified against client_ca_file, optionally pinned to a list
// of subjects).

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "agent/config.hpp"

namespace vipportd::http {

/// A server context for config (config.enabled must be true): TLS 1.2 or later, no
/// renegotiation, the certificate chain and key loaded, and when client_ca_file is set a client
/// certificate required, verified against it and, with allowed_subjects, matched against them.
/// Throws std::runtime_error naming the file and OpenSSL's reason when a file cannot be loaded
/// or the key does not match the certificate (startup only).
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_tls_context(
    const agent::TlsConfig& config);

/// The RFC 2253 form of an X509 name, as `openssl x509 -noout -subject -nameopt RFC2253` prints
/// it (without "subject="). Empty for null.
[[nodiscard]] std::string rfc2253_name(const void* x509_name);

}  // namespace vipportd::http
