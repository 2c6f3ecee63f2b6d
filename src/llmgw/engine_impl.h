/*
 * What the parts of the engine share (engine.c, engine_admit.c); private
 * to them.
 */
#ifndef ENGINE_IMPL_H
#define ENGINE_IMPL_H

struct chat;

/*
 * Who is asking: the static api_token, or a key made with llmgw-admin.
 * Returns 0 with ch->key filled, or -1 after answering.
 */
int	 chat_check_auth(struct chat *);

/*
 * With the request read: its records can be kept (backlog_max), its key
 * allows it, and what it can cost of the key's budget is held, ch->meter
 * set to follow it.  0, or -1 after answering.
 */
int	 chat_check_admission(struct chat *);

#endif /* ENGINE_IMPL_H */
