#include "t/prom_text.h"

#include <stdlib.h>

#include <sstream>

#include "t/proc_helpers.h"
#include "t/tmp_helpers.h"

namespace zt {

double PromText::sum(const std::string& name, const std::string& labels) const
{
    double total = 0;
    for (const auto& kv : samples) {
        const std::string& k = kv.first;
        size_t brace = k.find('{');
        if (k.compare(0, brace, name) != 0 || (brace == std::string::npos ? k.size() : brace) != name.size())
            continue;
        std::stringstream want(labels);
        std::string one;
        bool all = true;
        while (std::getline(want, one, ','))
            if (!one.empty() && k.find(one) == std::string::npos)
                all = false;
        if (all)
            total += kv.second;
    }
    return total;
}

bool parse_prom_text(const std::string& text, PromText* out)
{
    std::stringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty())
            continue;
        if (line[0] == '#') {
            std::stringstream w(line);
            std::string hash, kind, name, rest;
            w >> hash >> kind >> name;
            std::getline(w, rest);
            if (kind == "HELP")
                out->help.insert(name);
            else if (kind == "TYPE")
                out->type[name] = rest.empty() ? "" : rest.substr(1);
            continue;
        }
        size_t end = line.find('}');
        size_t sp = line.find(' ', end == std::string::npos ? 0 : end);
        if (sp == std::string::npos) {
            out->error = line;
            return false;
        }
        char* stop = nullptr;
        std::string v = line.substr(sp + 1);
        double d = v == "+Inf" ? 1e308 : strtod(v.c_str(), &stop);
        if (v != "+Inf" && (!stop || *stop != '\0')) {
            out->error = line;
            return false;
        }
        out->samples[line.substr(0, sp)] = d;
    }
    return true;
}

std::string promtool_check(const std::string& text)
{
    TempDir dir;
    std::string file = dir.path + "/scrape.txt";
    if (!write_file(file, text))
        return "cannot write " + file;
    std::string out;
    int rc = run_command("promtool check metrics < " + shell_quote(file) + " 2>&1", &out, 30);
    if (rc == 127 || out.find("not found") != std::string::npos)
        return "promtool is missing (t/prereqs.sh installs the prometheus package): " + out;
    if (rc != 0)
        return "promtool check metrics failed (" + std::to_string(rc) + "): " + out;
    return "";
}

}  // namespace zt
