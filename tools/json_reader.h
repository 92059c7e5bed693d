// A small JSON reader for zanctl: objects, arrays, strings (escapes
// \" \\ \/ \b \f \n \r \t; \uXXXX below 0x80 only), numbers, true, false
// and null. Enough for the documents zan writes (Metrics::to_json), not
// a general parser.
#ifndef ZAN_TOOLS_JSON_READER_H
#define ZAN_TOOLS_JSON_READER_H

#include <stdlib.h>

#include <map>
#include <string>
#include <vector>

namespace zan_tools {

struct JsonValue {
    enum Type { kNull, kBool, kNum, kStr, kArr, kObj } type = kNull;
    double num = 0;
    bool flag = false;
    std::string str;
    std::vector<JsonValue> arr;
    std::map<std::string, JsonValue> obj;

    // Member key of an object (a null value when absent).
    const JsonValue& operator[](const std::string& key) const
    {
        static const JsonValue none;
        auto it = obj.find(key);
        return it == obj.end() ? none : it->second;
    }
    double number() const { return type == kNum ? num : 0; }
};

class JsonReader {
public:
    // Parses text, which must hold one value; false on malformed input.
    static bool parse(const std::string& text, JsonValue* out)
    {
        JsonReader r(text);
        r.skip();
        if (!r.value(out, 0))
            return false;
        r.skip();
        return r.p_ == r.s_.size();
    }

private:
    explicit JsonReader(const std::string& s) : s_(s) {}

    void skip()
    {
        while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t'))
            p_++;
    }
    bool eat(char c)
    {
        skip();
        if (p_ < s_.size() && s_[p_] == c) {
            p_++;
            return true;
        }
        return false;
    }
    bool literal(const char* w)
    {
        size_t n = std::char_traits<char>::length(w);
        if (s_.compare(p_, n, w) != 0)
            return false;
        p_ += n;
        return true;
    }
    bool string(std::string* out)
    {
        if (!eat('"'))
            return false;
        while (p_ < s_.size() && s_[p_] != '"') {
            char c = s_[p_++];
            if (c != '\\') {
                out->push_back(c);
                continue;
            }
            if (p_ >= s_.size())
                return false;
            char e = s_[p_++];
            const char* from = "\"\\/bfnrt";
            const char* to = "\"\\/\b\f\n\r\t";
            const char* hit = std::char_traits<char>::find(from, 8, e);
            if (hit) {
                out->push_back(to[hit - from]);
            } else if (e == 'u' && p_ + 4 <= s_.size()) {
                long v = strtol(s_.substr(p_, 4).c_str(), nullptr, 16);
                p_ += 4;
                out->push_back(v < 0x80 ? static_cast<char>(v) : '?');
            } else {
                return false;
            }
        }
        return p_++ < s_.size();
    }
    bool value(JsonValue* v, int depth)
    {
        skip();
        if (p_ >= s_.size() || depth > 32)
            return false;
        char c = s_[p_];
        if (c == '{') {
            v->type = JsonValue::kObj;
            p_++;
            if (eat('}'))
                return true;
            do {
                std::string key;
                if (!string(&key) || !eat(':') || !value(&v->obj[key], depth + 1))
                    return false;
            } while (eat(','));
            return eat('}');
        }
        if (c == '[') {
            v->type = JsonValue::kArr;
            p_++;
            if (eat(']'))
                return true;
            do {
                v->arr.emplace_back();
                if (!value(&v->arr.back(), depth + 1))
                    return false;
            } while (eat(','));
            return eat(']');
        }
        if (c == '"') {
            v->type = JsonValue::kStr;
            return string(&v->str);
        }
        if (literal("true") || literal("false")) {
            v->type = JsonValue::kBool;
            v->flag = s_[p_ - 1] == 'e' && s_[p_ - 2] == 'u';
            return true;
        }
        if (literal("null"))
            return true;
        const char* start = s_.c_str() + p_;
        char* end = nullptr;
        v->num = strtod(start, &end);
        if (end == start)
            return false;
        v->type = JsonValue::kNum;
        p_ += static_cast<size_t>(end - start);
        return true;
    }

    const std::string& s_;
    size_t p_ = 0;
};

}  // namespace zan_tools

#endif
