/*
 * accept.h: the shim's own accept() (see accept.c), through which every
 * connection civetweb takes is admitted or refused.
 */
#ifndef SHIM_ACCEPT_H
#define SHIM_ACCEPT_H

void		accept_reserve_fd(void);

#endif
