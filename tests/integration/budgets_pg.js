// budgets.js with the database on a real PostgreSQL (#17): the same
// tests, every host's keys, holds and usage rows in one database started
// for the test (tests/lib/pg.js).
'use strict';
process.env.LLMGW_TEST_STORE = 'postgresql';
require('./budgets.js');
