/*
 * core/export.h: TPR_EXPORT marks the few libtorpor functions that torpord
 * and torporctl call; everything else stays hidden in the shared library.
 */
#ifndef TORPOR_CORE_EXPORT_H
#define TORPOR_CORE_EXPORT_H

#if defined(__GNUC__)
#define TPR_EXPORT __attribute__((visibility("default")))
#else
#define TPR_EXPORT
#endif

#endif /* TORPOR_CORE_EXPORT_H */
