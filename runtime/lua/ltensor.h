/*
** ltensor.h: the parts of zoe.tensor that live in separate files.
*/
#ifndef LTENSOR_H
#define LTENSOR_H

#include <lua.h>

/* add functions to the table on the top of the stack */
void lz_tensor_ops_methods(lua_State *L);
void lz_tensor_ops_functions(lua_State *L);
/* set metamethods in the metatable on the top of the stack */
void lz_tensor_ops_metamethods(lua_State *L);

#endif
