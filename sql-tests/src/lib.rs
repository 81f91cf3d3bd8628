//! sqllogictest files for Laminar (`slt/*.slt`) and the runner (`tests/slt.rs`) that starts a
//! fresh server for each file and drives it over the Postgres wire protocol.
