/*
 * budget.c: the body budget of budget.h, one atomic counter.
 */
#include "budget.h"

#include <stdatomic.h>

static long long limit = -1;	/* -1: no budget (before budget_init) */
static atomic_llong held;

/* Sets the budget, in bytes. */
void
budget_init(long long bytes)
{
	limit = bytes;
}

/* Takes bytes from the budget: 1, or 0 (taking nothing) when they do not fit. */
int
budget_take(long long bytes)
{
	long long	now = atomic_load(&held);

	if (bytes <= 0 || limit < 0)
		return 1;
	do
	{
		if (now + bytes > limit)
			return 0;
	} while (!atomic_compare_exchange_weak(&held, &now, now + bytes));
	return 1;
}

/* Gives bytes back. */
void
budget_give(long long bytes)
{
	if (bytes > 0 && limit >= 0)
		atomic_fetch_sub(&held, bytes);
}
