/*
 * torpor/torpor.h: everything a plugin needs, in one include.
 */
#ifndef TORPOR_ABI_TORPOR_H
#define TORPOR_ABI_TORPOR_H

#include <torpor/types.h>
#include <torpor/host.h>
#include <torpor/transport.h>
#include <torpor/class.h>
#include <torpor/storage.h>
#include <torpor/room.h>
#include <torpor/plugin.h>

#endif /* TORPOR_ABI_TORPOR_H */
