// A small JSON reader for the HTTP vectors in t/data/http-requests.jsonl
// and t/data/http-responses.jsonl (one JSON object per line; see
// the README beside it): objects, arrays, strings (\uXXXX becomes UTF-8;
// the raw bytes come from the base64 field raw_b64), numbers and literals.
// Enough for that file, not a general parser. Used by
// t/http_conformance_test.cc, t/http_response_conformance_test.cc and
// t/http_live_conformance_test.cc.
#ifndef ZAN_T_JSONL_H
#define ZAN_T_JSONL_H

#include <string>
#include <utility>
#include <vector>

namespace zt {

// One JSON value; objects keep their members in file order.
struct Json {
    enum Type { kNull, kBool, kNum, kStr, kArr, kObj } type = kNull;
    bool b = false;
    double n = 0;
    std::string s;
    std::vector<Json> a;
    std::vector<std::pair<std::string, Json>> o;

    // Member `key` of an object, or nullptr.
    const Json* get(const std::string& key) const;
    // String member `key`, or "" when it is absent or not a string.
    std::string str(const std::string& key) const;
    // True if member `key` is the literal true.
    bool flag(const std::string& key) const;
};

// Parses `text`, which must hold exactly one JSON value (white space
// around it allowed). False on malformed input.
bool parse_json(const std::string& text, Json* out);

// Appends one Json object per non-empty line of `path` to *out. Returns
// false when the file cannot be opened (*bad_line is left empty) or when a
// line is not a JSON object (*bad_line holds it; the lines before it have
// been appended).
bool read_jsonl(const std::string& path, std::vector<Json>* out, std::string* bad_line);

// Decodes base64 (the vectors' raw_b64); '=' padding and any byte outside
// the alphabet are skipped.
std::string base64_decode(const std::string& in);

// t/data/http-requests.jsonl in the source tree.
std::string http_vectors_path();
// t/data/http-responses.jsonl in the source tree.
std::string http_response_vectors_path();

}  // namespace zt

#endif
