build/rel/lib/verify.o: src/lib/verify.c src/lib/internal.h \
 include/tb/message.h include/tb/base64url.h include/tb/error.h \
 include/tb/verify.h
src/lib/internal.h:
include/tb/message.h:
include/tb/base64url.h:
include/tb/error.h:
include/tb/verify.h:
