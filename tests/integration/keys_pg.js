// keys.js with the database on a real PostgreSQL (#17): the same tests,
// the keys, holds, rates and usage rows of three llmgw processes in one
// database started for the test (tests/lib/pg.js).
'use strict';
process.env.LLMGW_TEST_STORE = 'postgresql';
require('./keys.js');
