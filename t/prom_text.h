// A reader of the Prometheus text exposition format for the tests: the
// samples of a scrape by name and labels, the HELP and TYPE lines seen,
// and promtool_check(), which runs `promtool check metrics` (the peer
// t/prereqs.sh installs) over a scrape. Used by t/metrics_test.cc and
// t/server_metrics_test.cc.
#ifndef ZAN_T_PROM_TEXT_H
#define ZAN_T_PROM_TEXT_H

#include <map>
#include <set>
#include <string>

namespace zt {

struct PromText {
    // "name{labels as written}" -> value, e.g. zan_requests_total{role="worker",id="0"}.
    std::map<std::string, double> samples;
    std::set<std::string> help;  // families with a # HELP line
    std::map<std::string, std::string> type;  // family -> type
    std::string error;  // first malformed line, if any

    // Sum of the samples of `name` whose labels contain every one of
    // `labels` (e.g. "role=\"worker\""; "" matches all).
    double sum(const std::string& name, const std::string& labels = "") const;
};

// Parses a scrape; false (with out->error set) on a malformed line.
bool parse_prom_text(const std::string& text, PromText* out);

// Runs promtool check metrics (format and lint) on text: "" when it
// passes, else what it said. A missing promtool is a failure, never a skip.
std::string promtool_check(const std::string& text);

}  // namespace zt

#endif
