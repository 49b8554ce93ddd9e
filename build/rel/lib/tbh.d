build/rel/lib/tbh.o: src/lib/tbh.c include/tb/base64url.h \
 include/tb/error.h include/tb/tbh.h
include/tb/base64url.h:
include/tb/error.h:
include/tb/tbh.h:
