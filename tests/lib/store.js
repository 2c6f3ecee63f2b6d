// The store a test runs against: each setup's own SQLite file (the
// default), or, with LLMGW_TEST_STORE=postgresql, one real PostgreSQL
// (tests/lib/pg.js) for every setup of the test, so that a test about
// storage runs against both backends (budgets_pg.js, keys_pg.js).
// Queries go through sql(db, query) either way; booleans are compared as
// CAST(x AS integer), which both understand.
'use strict';
const servers = require('./servers');
const {startPostgres} = require('./pg');

const PG = process.env.LLMGW_TEST_STORE === 'postgresql';
let pg = null;

// Start the store the test runs against (nothing to start for SQLite).
async function startStore(name) {
  if (PG) pg = await startPostgres(name);
  return pg;
}

const sql = (db, query) => pg ? pg.sql(query) : servers.sql(db, query);

// servers.setup(), its database the test's PostgreSQL where there is one.
const setup = (name, opts = {}) => servers.setup(name, pg ? {...opts, conf: {...opts.conf, database: pg.uri},
  env: {...opts.env, LLMGW_DB: pg.uri}} : opts);

// The usage row of request "id", once there.
const usageRow = (db, id, ms = 10000) => servers.usageRow(db, id, ms, sql);

module.exports = {PG, startStore, sql, setup, usageRow};
