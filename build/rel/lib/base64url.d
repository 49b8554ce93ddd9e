build/rel/lib/base64url.o: src/lib/base64url.c include/tb/base64url.h \
 include/tb/error.h
include/tb/base64url.h:
include/tb/error.h:
