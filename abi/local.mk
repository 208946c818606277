# The public ABI: installed as <torpor/*.h> with torpor-plugin.pc.
torporincludedir = $(includedir)/torpor
torporinclude_HEADERS = \
	abi/torpor/torpor.h \
	abi/torpor/types.h \
	abi/torpor/plugin.h \
	abi/torpor/host.h \
	abi/torpor/transport.h \
	abi/torpor/class.h \
	abi/torpor/storage.h \
	abi/torpor/room.h

pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = abi/torpor-plugin.pc
EXTRA_DIST += abi/torpor-plugin.pc.in abi/CHANGES
