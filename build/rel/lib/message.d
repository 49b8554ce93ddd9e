build/rel/lib/message.o: src/lib/message.c include/tb/error.h \
 include/tb/message.h src/lib/internal.h
include/tb/error.h:
include/tb/message.h:
src/lib/internal.h:
