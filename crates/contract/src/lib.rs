//! Primary, unique, not-null and foreign-key contracts, checked by DataFusion queries.
//!
//! A [`Contract`] is declared per relation. [`Contract::validate`] rejects declarations that
//! name unknown relations or columns before anything runs, and [`check`] runs every
//! constraint as a query (never a loop over rows in Rust) and reports violations with
//! sample rows.

mod check;

pub use check::{CheckReport, CheckResult, check};

use serde::{Deserialize, Serialize};

/// The constraints declared on one relation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The relation (source or view) the contract is on.
    #[serde(skip)]
    pub relation: String,
    /// Columns whose values identify a row: unique and never null.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Column sets whose values are unique.
    #[serde(default)]
    pub unique: Vec<Vec<String>>,
    /// Columns that are never null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Columns whose values must exist as a key of another relation.
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKey>,
}

/// A foreign key: `columns` of this relation reference `referenced_columns` of `references`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKey {
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced relation.
    pub references: String,
    /// The referenced columns, a key of `references`.
    pub referenced_columns: Vec<String>,
}

/// Errors raised by a contract declaration or check.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The declaration is invalid; nothing was checked.
    #[error("contract on `{relation}`: {message}")]
    Declaration {
        /// The relation.
        relation: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A check query failed.
    #[error("contract check on `{relation}` failed to run: {source}")]
    DataFusion {
        /// The relation.
        relation: String,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
}

/// The crate's result type.
pub type Result<T, E = ContractError> = std::result::Result<T, E>;
