/*
** lzoe.h: the binding's headers together, for the loop's files (lloop.h).
** Binding files include what they use: lzaux.h, ltask.h, lzlib.h.
*/
#ifndef LZOE_H
#define LZOE_H

#include "../core/pool.h"
#include "lzaux.h"
#include "ltask.h"
#include "lzlib.h"

#endif
