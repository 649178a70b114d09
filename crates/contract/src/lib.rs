//! Primary, unique, not-null and foreign-key contracts: catalog facts in `information_schema`,
//! checked by DataFusion queries, with drift detection.
//!
//! A [`Contract`] is declared per relation, in `dfpipe.toml` or through [`Contract::new`].
//! [`register`] validates a set of contracts (unknown relations or columns, empty keys,
//! foreign keys to columns that are not a key or whose types cannot be compared) and, only
//! when all of them are valid:
//! - sets primary keys and unique keys as DataFusion `Constraints` on the table providers, so
//!   the optimizer can use their functional dependencies;
//! - adds `information_schema.table_constraints`, `key_column_usage`,
//!   `referential_constraints` and `check_constraints` beside DataFusion's own tables.
//!
//! [`check`] runs every constraint as a DataFusion query, fused into one query per relation
//! when nothing is violated, and reports violation counts with sample rows; [`drift`]
//! compares declared column types with the registered schema and `information_schema`.

mod check;
mod drift;
mod information_schema;
mod table;
mod validate;

pub use check::{CheckOptions, CheckReport, CheckResult, Fusion, check, check_with};
pub use drift::{Drift, DriftedColumn, drift};
pub use information_schema::register;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a constraint: how it is declared, checked and reported.
///
/// Serialized and displayed in `snake_case`, as `dfpipe check --json` shows it:
/// `primary_key`, `unique`, `not_null`, `foreign_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    /// Columns whose values identify a row: unique and never null.
    PrimaryKey,
    /// Columns whose values are unique (nulls are distinct).
    Unique,
    /// A column that is never null.
    NotNull,
    /// Columns whose values exist as a key of another relation.
    ForeignKey,
}

impl ConstraintKind {
    /// The `snake_case` name, as in `dfpipe.toml` and `dfpipe check --json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PrimaryKey => "primary_key",
            Self::Unique => "unique",
            Self::NotNull => "not_null",
            Self::ForeignKey => "foreign_key",
        }
    }
}

impl fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment (`{:<12}`) apply.
        f.pad(self.name())
    }
}

/// The constraints declared on one relation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The relation (source or view) the contract is on.
    #[serde(skip)]
    pub relation: String,
    /// Columns whose values identify a row: unique and never null. `Some(vec![])` is an
    /// error (an empty key); `None` declares no primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<String>>,
    /// Column sets whose values are unique (nulls are distinct, as in SQL).
    #[serde(default)]
    pub unique: Vec<Vec<String>>,
    /// Columns that are never null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Columns whose values must exist as a key of another relation.
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKey>,
    /// The declared columns and their Arrow types, as `SHOW COLUMNS` prints them (`Int64`,
    /// `Utf8`, `Decimal128(15, 2)`, `Date32`). Optional: when given, [`drift`] reports
    /// columns added, removed or retyped since the declaration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, String>,
}

/// A foreign key: `columns` of this relation reference `referenced_columns` of `references`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKey {
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced relation.
    pub references: String,
    /// The referenced columns: the primary key or a unique key of `references`.
    pub referenced_columns: Vec<String>,
}

impl Contract {
    /// An empty contract on `relation`, to be completed with the builder methods.
    pub fn new(relation: impl Into<String>) -> Self {
        Self { relation: relation.into(), ..Self::default() }
    }

    /// Declares the primary key.
    #[must_use]
    pub fn primary_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.primary_key = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a unique key.
    #[must_use]
    pub fn unique<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.unique.push(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Adds not-null columns.
    #[must_use]
    pub fn not_null<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.not_null.extend(columns.into_iter().map(Into::into));
        self
    }

    /// Adds a foreign key from `columns` to `referenced_columns` of `references`.
    #[must_use]
    pub fn foreign_key<S: Into<String>, T: Into<String>>(
        mut self,
        columns: impl IntoIterator<Item = S>,
        references: impl Into<String>,
        referenced_columns: impl IntoIterator<Item = T>,
    ) -> Self {
        self.foreign_keys.push(ForeignKey {
            columns: columns.into_iter().map(Into::into).collect(),
            references: references.into(),
            referenced_columns: referenced_columns.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Declares a column and its Arrow type, for drift detection.
    #[must_use]
    pub fn column(mut self, name: impl Into<String>, data_type: impl Into<String>) -> Self {
        self.columns.insert(name.into(), data_type.into());
        self
    }

    /// The primary-key columns, empty when none is declared.
    pub fn key_columns(&self) -> &[String] {
        self.primary_key.as_deref().unwrap_or_default()
    }

    /// The primary key (if any) then the unique keys, with their constraint kind.
    pub(crate) fn keys(&self) -> impl Iterator<Item = (ConstraintKind, &[String])> {
        let primary = self.primary_key.as_deref().map(|k| (ConstraintKind::PrimaryKey, k));
        primary.into_iter().chain(self.unique.iter().map(|u| (ConstraintKind::Unique, u.as_slice())))
    }

    /// The columns that must not be null: the primary key's, then the declared ones, once each.
    pub(crate) fn not_null_columns(&self) -> Vec<&String> {
        let mut out: Vec<&String> = Vec::new();
        for c in self.key_columns().iter().chain(&self.not_null) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

/// Errors raised by a contract declaration or check.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The declaration is invalid; nothing was registered or checked.
    #[error("contract on `{relation}`: {message}")]
    Declaration {
        /// The relation whose contract is at fault.
        relation: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A check or registration query failed.
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
