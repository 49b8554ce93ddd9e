/* libtb: the Token Binding library. Include this, or the module headers you need. */
#ifndef TB_TB_H
#define TB_TB_H

#include "tb/authres.h"
#include "tb/base64url.h"
#include "tb/channel.h"
#include "tb/cookie.h"
#include "tb/error.h"
#include "tb/jwt.h"
#include "tb/message.h"
#include "tb/sign.h"
#include "tb/tbh.h"
#include "tb/tlsext.h"
#include "tb/verify.h"

#define TB_VERSION_STRING "0.1.0"

#endif
