/*
 * tb_strerror: the stable reason names. They appear in logs, metrics labels and tool output,
 * so they never change once released.
 */
#include "tb/error.h"

const char *tb_strerror(int err)
{
    switch (err) {
    case TB_OK:
        return "ok";
    case TB_EBASE64:
        return "base64";
    case TB_EPARSE:
        return "parse";
    case TB_ETOOLARGE:
        return "too_large";
    case TB_ENOPROVIDED:
        return "no_provided";
    case TB_EDUPLICATE:
        return "duplicate";
    case TB_EKEYPARAMS:
        return "key_params";
    case TB_EUNSUPPORTED:
        return "unsupported";
    case TB_ESIGNATURE:
        return "signature";
    case TB_ENOMEM:
        return "nomem";
    case TB_EINVAL:
        return "invalid";
    case TB_ECRYPTO:
        return "crypto";
    case TB_ECHANNEL:
        return "channel";
    case TB_EUNBOUND:
        return "unbound";
    case TB_EMISMATCH:
        return "mismatch";
    case TB_EKEYID:
        return "unknown_key";
    case TB_EALG:
        return "alg";
    case TB_EEXPIRED:
        return "expired";
    case TB_ENOTYET:
        return "not_yet_valid";
    case TB_ECLAIM:
        return "claim";
    default:
        return "unknown";
    }
}
