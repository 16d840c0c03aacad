// Placeholder: replaced by the real entry point (config, sources, HTTP server).
#include <cstdio>
int main() {
    std::puts("vipportd " VIPPORTD_VERSION);
    return 0;
}
