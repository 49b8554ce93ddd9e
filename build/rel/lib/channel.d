build/rel/lib/channel.o: src/lib/channel.c include/tb/channel.h \
 include/tb/error.h
include/tb/channel.h:
include/tb/error.h:
