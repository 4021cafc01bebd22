/* status.h: return codes and fused-activation ids shared by every kernel family. */
#ifndef CCONV_STATUS_H
#define CCONV_STATUS_H

#define CCONV_OK 0
#define CCONV_ENOMEM 1   /* a workspace could not be allocated; outputs are unspecified */
#define CCONV_EINVAL 2   /* an option the kernel cannot honour (e.g. an algorithm that does not apply) */

/* An activation fused into a kernel: applied to the output as it is written (forward), and its
 * derivative applied to grad_y as it is read (backward, which then needs the output y). */
#define CCONV_ACTIVATION_NONE 0
#define CCONV_ACTIVATION_RELU 1

#endif
