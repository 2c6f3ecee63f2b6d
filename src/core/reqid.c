#include "config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_RANDOM_H
#include <sys/random.h>
#endif

#include "clock.h"
#include "reqid.h"

/* xoshiro128-style generator state, seeded from the kernel per thread. */
static _Thread_local uint64_t	 rng_s[2];
static _Thread_local int	 rng_seeded;

static void
rng_seed(void)
{
	struct timespec	 ts;

#ifdef HAVE_GETRANDOM
	if (getrandom(rng_s, sizeof(rng_s), 0) != sizeof(rng_s))
#endif
	{
		/* No kernel entropy: mix what differs between threads. */
		clock_gettime(CLOCK_REALTIME, &ts);
		rng_s[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^
		    (uint64_t)getpid();
		rng_s[1] = (uint64_t)(uintptr_t)&rng_s ^ (uint64_t)ts.tv_sec;
	}
	if (rng_s[0] == 0 && rng_s[1] == 0)
		rng_s[1] = 1;
	rng_seeded = 1;
}

uint64_t
reqid_random(void)
{
	uint64_t	 s0, s1, r;

	if (!rng_seeded)
		rng_seed();
	/* xorshift128+ */
	s1 = rng_s[0];
	s0 = rng_s[1];
	r = s0 + s1;
	rng_s[0] = s0;
	s1 ^= s1 << 23;
	rng_s[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
	return r;
}

void
reqid_new(char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	uint64_t		 ms = (uint64_t)clock_wall_ms(), r1, r2;
	int			 i;

	r1 = reqid_random();
	r2 = reqid_random();
	for (i = 11; i >= 0; i--, ms >>= 4)
		out[i] = hex[ms & 0xf];
	for (i = 12; i < 28; i++, r1 >>= 4)
		out[i] = hex[r1 & 0xf];
	for (i = 28; i < REQID_LEN; i++, r2 >>= 4)
		out[i] = hex[r2 & 0xf];
	out[REQID_LEN] = '\0';
}

int
reqid_valid(const char *s)
{
	size_t	 n;

	if (s == NULL)
		return 0;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-");
	return n > 0 && n <= REQID_MAX && s[n] == '\0';
}
