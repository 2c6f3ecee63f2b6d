/*
 * API keys.  A key's secret is "llmgw_" and 32 random bytes in base64url;
 * it is shown once, when the key is made, and only its SHA-256 is stored.
 * The responder finds a key by hashing what the client sent.  A key may
 * carry a token budget per day or month, a request rate, a list of models
 * and an expiry; a revoked or expired key is refused at once, in every
 * process, since each request looks its key up.
 */
#ifndef KEYS_H
#define KEYS_H

#include <stddef.h>
#include <stdint.h>

struct dbpool;
struct err;
struct sqlite3;

#define KEY_PREFIX	"llmgw_"
#define KEY_SECRET_LEN	49		/* "llmgw_" + 43 base64url */
#define KEY_MODELS_MAX	512
#define KEY_HASH_LEN	64		/* SHA-256 in hex */

struct key {
	char	 id[24];		/* "k" + 12 hex: logged, not secret */
	char	 name[128];
	char	 prefix[24];		/* the secret's start, for people */
	int64_t	 created;		/* Unix ms */
	int64_t	 expires;		/* 0: never */
	int64_t	 revoked;		/* 0: not */
	long	 budget_tokens;		/* -1: no budget */
	char	 period[8];		/* "day", "month", or "" */
	long	 rpm;			/* -1: no limit */
	char	 models[KEY_MODELS_MAX];	/* "a,b"; "": any model */
	long	 max_overshoot;		/* the most a request cost past
					 * its hold */
};

/*
 * The key whose secret is the "len" bytes at "token", waiting for the
 * database until "deadline_ms" (monotonic; 0: the default).  Returns 1
 * with "key" filled, 0 when there is none, -1 with "err" set.
 */
int	 keys_lookup(struct dbpool *, const char *token, size_t len,
	    int64_t deadline_ms, struct key *, struct err *);

/*
 * The hash a key whose secret is the "len" bytes at "token" is stored
 * by: 1, or 0 if "token" cannot be one of ours.
 */
int	 keys_hash(const char *token, size_t len,
	    char hash[KEY_HASH_LEN + 1]);

/*
 * A new key like "spec": "out" with its id, secret's prefix and time of
 * making, "secret" (KEY_SECRET_LEN + 1 bytes) and "hash" the secret's.
 * 0, or -1 with "err" set.  For each store to keep as it does.
 */
int	 keys_mint(const struct key *spec, char *secret, struct key *out,
	    char hash[KEY_HASH_LEN + 1], struct err *);

/* 1 if the key may use "model". */
int	 key_allows_model(const struct key *, const char *model);

enum key_state {
	KEY_ACTIVE = 0,
	KEY_REVOKED,
	KEY_EXPIRED
};

/* Whether the key may be used at "now_ms". */
enum key_state key_state(const struct key *, int64_t now_ms);

/*
 * Make a key from "spec" (name, budget, period, rpm, models, expires).
 * "secret" gets the secret (KEY_SECRET_LEN + 1 bytes); "out" the key as
 * stored.  Returns 0, or -1 with "err" set (a name in use, say).
 */
int	 keys_create(struct sqlite3 *, const struct key *spec, char *secret,
	    struct key *out, struct err *);

/* The key named "name_or_id": 1 found, 0 not, -1 with "err". */
int	 keys_get(struct sqlite3 *, const char *name_or_id, struct key *,
	    struct err *);

/* Revoke key "id" now: 0, or -1 with "err". */
int	 keys_revoke(struct sqlite3 *, const char *id, struct err *);

/* Call "fn" for each key, by name; 0, or -1 with "err". */
int	 keys_each(struct sqlite3 *, void (*fn)(void *, const struct key *),
	    void *arg, struct err *);

#endif /* KEYS_H */
