#pragma once
// SharedTextBody: the body of every response, either text of its own or a shared, immutable
// string from the body cache, which is then sent without a copy per response.
//
// Why not Beast's string_body: each answer of a cached body copied it. At the huge scale 64
// concurrent answers held 64 copies of a 22 KB body; at any scale a copy above 1032 bytes misses
// glibc's per-thread cache (tcache, malloc/malloc.c MAX_TCACHE_SIZE) and takes the arena lock,
// which the scan worker and the HTTP threads contend for (agent/main.cpp tune_malloc: two arenas).

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>
#include <boost/system/error_code.hpp>

namespace vipportd::http {

class SharedText {
  public:
    SharedText() = default;
    explicit SharedText(std::string text) : own_(std::move(text)) {}
    /// Text shared with its owner (never null: null reads as empty).
    [[nodiscard]] static SharedText shared(std::shared_ptr<const std::string> text) {
        SharedText t;
        t.shared_ = std::move(text);
        return t;
    }

    SharedText& operator=(std::string text) {
        own_ = std::move(text);
        shared_.reset();
        return *this;
    }

    [[nodiscard]] std::string_view view() const {
        return shared_ ? std::string_view(*shared_) : std::string_view(own_);
    }
    // Implicit, so that the body reads as text wherever a string_view will do.
    operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
    [[nodiscard]] std::size_t size() const { return view().size(); }
    [[nodiscard]] bool empty() const { return view().empty(); }
    [[nodiscard]] std::string str() const { return std::string(view()); }
    void clear() {
        own_.clear();
        shared_.reset();
    }

    /// Appends to the text, making it owned first (what a parsed body needs).
    void append(std::string_view more) {
        if (shared_) {
            own_.assign(*shared_);
            shared_.reset();
        }
        own_.append(more);
    }
    void reserve(std::size_t n) { own_.reserve(n); }

    friend bool operator==(const SharedText& a, std::string_view b) { return a.view() == b; }
    friend std::ostream& operator<<(std::ostream& os, const SharedText& t) {
        return os << t.view();
    }

  private:
    std::string own_;
    std::shared_ptr<const std::string> shared_;
};

/// A Beast Body. The server only writes it; the reader serves clients and tests.
struct SharedTextBody {
    using value_type = SharedText;

    static std::uint64_t size(const value_type& body) { return body.size(); }

    class writer {
      public:
        using const_buffers_type = boost::asio::const_buffer;

        template <bool isRequest, class Fields>
        writer(const boost::beast::http::header<isRequest, Fields>& /*header*/,
               const value_type& body)
            : body_(body) {}

        void init(boost::system::error_code& ec) { ec = {}; }

        boost::optional<std::pair<const_buffers_type, bool>> get(boost::system::error_code& ec) {
            ec = {};
            const std::string_view text = body_.view();
            return {{const_buffers_type(text.data(), text.size()), false}};
        }

      private:
        const value_type& body_;
    };

    class reader {
      public:
        template <bool isRequest, class Fields>
        reader(boost::beast::http::header<isRequest, Fields>& /*header*/, value_type& body)
            : body_(body) {}

        void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec) {
            ec = {};
            body_.clear();
            if (length) {
                body_.reserve(static_cast<std::size_t>(*length));
            }
        }

        template <class ConstBufferSequence>
        std::size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
            ec = {};
            std::size_t n = 0;
            for (const auto& b : boost::beast::buffers_range_ref(buffers)) {
                body_.append(std::string_view(static_cast<const char*>(b.data()), b.size()));
                n += b.size();
            }
            return n;
        }

        void finish(boost::system::error_code& ec) { ec = {}; }

      private:
        value_type& body_;
    };
};

}  // namespace vipportd::http
