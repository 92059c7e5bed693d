#include "t/jsonl.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cstddef>
#include <fstream>

namespace zt {

const Json* Json::get(const std::string& key) const
{
    for (const auto& kv : o)
        if (kv.first == key)
            return &kv.second;
    return nullptr;
}

std::string Json::str(const std::string& key) const
{
    const Json* v = get(key);
    return v && v->type == kStr ? v->s : std::string();
}

bool Json::flag(const std::string& key) const
{
    const Json* v = get(key);
    return v && v->type == kBool && v->b;
}

namespace {

// A recursive-descent reader over one string; ok_ turns false at the
// first malformed byte and stays false.
class JsonReader {
public:
    explicit JsonReader(const std::string& text) : p_(text.data()), end_(text.data() + text.size()) {}
    bool parse(Json* out)
    {
        *out = value();
        ws();
        return ok_ && p_ == end_;
    }

private:
    void ws()
    {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r'))
            ++p_;
    }
    bool eat(char c)
    {
        ws();
        if (p_ < end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    bool word(const char* w)
    {
        size_t n = strlen(w);
        if (static_cast<size_t>(end_ - p_) < n || strncmp(p_, w, n) != 0)
            return ok_ = false;
        p_ += n;
        return true;
    }
    unsigned hex4()
    {
        unsigned v = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            if (p_ >= end_)
                return ok_ = false;
            char c = *p_;
            v = v * 16 + static_cast<unsigned>(isdigit(static_cast<unsigned char>(c)) ? c - '0'
                                                                                      : (c | 0x20) - 'a' + 10);
        }
        return v;
    }
    // Appends code point cp (below 0x10000) as UTF-8.
    static void utf8(unsigned cp, std::string* s)
    {
        if (cp < 0x80) {
            *s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            *s += static_cast<char>(0xc0 | (cp >> 6));
            *s += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            *s += static_cast<char>(0xe0 | (cp >> 12));
            *s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            *s += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }
    std::string string()
    {
        std::string s;
        if (!eat('"')) {
            ok_ = false;
            return s;
        }
        while (p_ < end_ && *p_ != '"') {
            char c = *p_++;
            if (c != '\\') {
                s += c;
                continue;
            }
            if (p_ >= end_)
                break;
            char e = *p_++;
            switch (e) {
            case 'n': s += '\n'; break;
            case 'r': s += '\r'; break;
            case 't': s += '\t'; break;
            case 'b': s += '\b'; break;
            case 'f': s += '\f'; break;
            case 'u': utf8(hex4(), &s); break;
            default: s += e; break;  // \" \\ \/
            }
        }
        if (!eat('"'))
            ok_ = false;
        return s;
    }
    Json value()
    {
        Json v;
        ws();
        if (p_ >= end_) {
            ok_ = false;
            return v;
        }
        char c = *p_;
        if (c == '{') {
            v.type = Json::kObj;
            ++p_;
            if (eat('}'))
                return v;
            do {
                std::string k = string();
                if (!eat(':'))
                    ok_ = false;
                Json item = value();
                v.o.emplace_back(std::move(k), std::move(item));
            } while (ok_ && eat(','));
            if (!eat('}'))
                ok_ = false;
        } else if (c == '[') {
            v.type = Json::kArr;
            ++p_;
            if (eat(']'))
                return v;
            do
                v.a.push_back(value());
            while (ok_ && eat(','));
            if (!eat(']'))
                ok_ = false;
        } else if (c == '"') {
            v.type = Json::kStr;
            v.s = string();
        } else if (c == 't' || c == 'f') {
            v.type = Json::kBool;
            v.b = c == 't';
            word(v.b ? "true" : "false");
        } else if (c == 'n') {
            word("null");
        } else {
            v.type = Json::kNum;
            char* e = nullptr;
            std::string num(p_, static_cast<size_t>(std::min<ptrdiff_t>(end_ - p_, 32)));
            v.n = strtod(num.c_str(), &e);
            if (e == num.c_str())
                ok_ = false;
            p_ += e - num.c_str();
        }
        return v;
    }

    const char* p_;
    const char* end_;
    bool ok_ = true;
};

}  // namespace

bool parse_json(const std::string& text, Json* out) { return JsonReader(text).parse(out); }

bool read_jsonl(const std::string& path, std::vector<Json>* out, std::string* bad_line)
{
    bad_line->clear();
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return false;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        Json j;
        if (!parse_json(line, &j) || j.type != Json::kObj) {
            *bad_line = line;
            return false;
        }
        out->push_back(std::move(j));
    }
    return true;
}

std::string base64_decode(const std::string& in)
{
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0)
            continue;  // '=' padding
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string http_vectors_path() { return std::string(ZAN_SRC_DIR) + "/t/data/http-requests.jsonl"; }

std::string http_response_vectors_path() { return std::string(ZAN_SRC_DIR) + "/t/data/http-responses.jsonl"; }

}  // namespace zt
