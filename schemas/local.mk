# The .proto files are the one definition of what crosses a process
# boundary; protoc-c generates their C at build time.
PROTO_FILES = schemas/torpor/event.proto
PROTO_C = schemas/torpor/event.pb-c.c
PROTO_H = schemas/torpor/event.pb-c.h

# The nng transport's requests and replies; only its plugin uses them.
NNG_PROTO_C = schemas/torpor/nng.pb-c.c
NNG_PROTO_H = schemas/torpor/nng.pb-c.h

EXTRA_DIST += $(PROTO_FILES) schemas/torpor/nng.proto
BUILT_SOURCES += $(PROTO_C) $(PROTO_H) $(NNG_PROTO_C) $(NNG_PROTO_H)
CLEANFILES += $(PROTO_C) $(PROTO_H) $(NNG_PROTO_C) $(NNG_PROTO_H)

# nng.proto imports event.proto.
$(NNG_PROTO_C) $(NNG_PROTO_H): $(srcdir)/schemas/torpor/event.proto

schemas/torpor/%.pb-c.c schemas/torpor/%.pb-c.h: $(srcdir)/schemas/torpor/%.proto
	@$(MKDIR_P) schemas/torpor
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/schemas --c_out=schemas $<

# The backend class's protocol, built into its plugin and its workers, not
# into libtorpor.
BACKEND_PROTO_C = schemas/torpor/backend.pb-c.c
BACKEND_PROTO_H = schemas/torpor/backend.pb-c.h
EXTRA_DIST += schemas/torpor/backend.proto
BUILT_SOURCES += $(BACKEND_PROTO_C) $(BACKEND_PROTO_H)
CLEANFILES += $(BACKEND_PROTO_C) $(BACKEND_PROTO_H)
