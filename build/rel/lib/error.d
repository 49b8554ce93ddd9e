build/rel/lib/error.o: src/lib/error.c include/tb/error.h
include/tb/error.h:
