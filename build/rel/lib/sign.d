build/rel/lib/sign.o: src/lib/sign.c src/lib/internal.h \
 include/tb/message.h include/tb/base64url.h include/tb/error.h \
 include/tb/sign.h
src/lib/internal.h:
include/tb/message.h:
include/tb/base64url.h:
include/tb/error.h:
include/tb/sign.h:
