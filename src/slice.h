/* slice.h - a view of bytes owned by someone else.
 *
 * A slice never owns its bytes: whoever hands one out says how long it stays
 * valid (for the decoder: until the event callback returns).
 */
#ifndef RS_SLICE_H
#define RS_SLICE_H

#include <stddef.h>

struct rs_slice {
    const char *p;
    size_t len;
};

#endif
