# Example backend workers.  The C one is built by `make` (it needs the
# generated protobuf-c code) but never installed; the Node.js one runs from
# the source tree after `npm ci --prefix examples/workers/node`.
if WITH_NNG
noinst_PROGRAMS += examples/workers/c/torpor-moderator
examples_workers_c_torpor_moderator_SOURCES = \
	examples/workers/c/worker.h \
	examples/workers/c/worker.c \
	examples/workers/c/reply.c \
	examples/workers/c/moderator.c
nodist_examples_workers_c_torpor_moderator_SOURCES = $(PROTO_C) $(PROTO_H) \
	$(BACKEND_PROTO_C) $(BACKEND_PROTO_H)
examples_workers_c_torpor_moderator_CFLAGS = $(AM_CFLAGS) $(NNG_CFLAGS) \
	$(PROTOBUF_C_CFLAGS)
examples_workers_c_torpor_moderator_LDADD = $(NNG_LIBS) $(PROTOBUF_C_LIBS)
endif

EXTRA_DIST += examples/workers/README.md
