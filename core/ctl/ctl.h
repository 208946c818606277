/*
 * core/ctl/ctl.h: torporctl's commands.
 */
#ifndef TORPOR_CORE_CTL_CTL_H
#define TORPOR_CORE_CTL_CTL_H

#include "core/runtime.h"

/*
 * ctl_migrate copies everything in from's storage into to's, which must
 * be empty, and compares the counts of both.  Prints the counts; returns
 * the process exit status.
 */
int ctl_migrate(struct tpr_runtime *from, struct tpr_runtime *to);

#endif /* TORPOR_CORE_CTL_CTL_H */
