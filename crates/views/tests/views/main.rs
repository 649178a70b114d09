//! The views crate through its public API, in one test binary: SQL views and the safe SQL
//! policy (`views`), templates, parameters, shared lazy views, the error messages users read
//! (`messages`) and fuzzing of the SQL entry (`fuzz`).

mod common;
mod fuzz;
mod messages;
mod params;
mod shared;
mod templates;
mod views;
