/*
 * tbclient errors (see errors.h): the descriptions and the curl exit status of each code, in
 * one table indexed by the negated code.
 */
#include "errors.h"

struct entry {
    const char *text;
    int exit_code;
};

static const struct entry table[] = {
    [0] = {"ok", 0},
    [-TBC_EUSAGE] = {"bad usage", 2},
    [-TBC_EUNSUPPORTED] = {"unsupported protocol or feature", 1},
    [-TBC_EURL] = {"malformed URL", 3},
    [-TBC_ERESOLVE] = {"could not resolve host", 6},
    [-TBC_ECONNECT] = {"could not connect to server", 7},
    [-TBC_EPROTO] = {"weird server reply", 8},
    [-TBC_EH2] = {"HTTP/2 error", 16},
    [-TBC_EPARTIAL] = {"transfer closed before the body ended", 18},
    [-TBC_EHTTP] = {"the requested URL returned an error", 22},
    [-TBC_EWRITE] = {"failed writing output", 23},
    [-TBC_EREAD] = {"failed reading a local file", 26},
    [-TBC_ENOMEM] = {"out of memory", 27},
    [-TBC_ETIMEOUT] = {"operation timed out", 28},
    [-TBC_ETLS] = {"TLS connect error", 35},
    [-TBC_EREDIRS] = {"too many redirects", 47},
    [-TBC_EEMPTY] = {"empty reply from server", 52},
    [-TBC_ESEND] = {"failure sending data", 55},
    [-TBC_ERECV] = {"failure receiving data", 56},
    [-TBC_EKEY] = {"Token Binding key problem", 58},
    [-TBC_ECERT] = {"server certificate verification failed", 60},
    [-TBC_EREWIND] = {"the request body cannot be sent again", 65},
    [-TBC_ECACERT] = {"problem with the CA certificate file", 77},
    [-TBC_ECOOKIE] = {"cookie jar problem", 26},
    [-TBC_EINTERNAL] = {"internal error", 1},
};

#define TABLE_LEN ((int)(sizeof(table) / sizeof(table[0])))

const char *tbc_strerror(int err)
{
    if (err > 0 || -err >= TABLE_LEN || table[-err].text == 0)
        return "unknown error";
    return table[-err].text;
}

int tbc_exit_code(int err)
{
    if (err > 0 || -err >= TABLE_LEN || table[-err].text == 0)
        return 1;
    return table[-err].exit_code;
}
