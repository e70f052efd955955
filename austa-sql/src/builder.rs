//! Building SQL whose shape depends on the data (lists, optional filters, `SET` clauses) without
//! counting placeholders by hand: [`QueryBuilder::push_bind`] writes the next `$N` itself.
//!
//! ```
//! use austa_sql::QueryBuilder;
//! let mut q = QueryBuilder::new("SELECT id FROM patients WHERE organization_id = ");
//! q.push_bind(uuid::Uuid::nil()).push(" AND phone_bidx IN (");
//! let mut list = q.separated(", ");
//! for digest in [vec![1u8], vec![2u8]] {
//!     list.push_bind(digest);
//! }
//! q.push(")");
//! assert_eq!(q.sql(), "SELECT id FROM patients WHERE organization_id = $1 AND phone_bidx IN ($2, $3)");
//! ```

use std::fmt::{Display, Write};

use crate::value::{IntoValue, Query, Value};

/// SQL text and its arguments, built piece by piece.
#[derive(Default)]
pub struct QueryBuilder {
    sql: String,
    args: Vec<Value>,
}

impl QueryBuilder {
    /// A builder starting with `sql` (which must not contain placeholders of its own).
    pub fn new(sql: impl Into<String>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    /// Continues `query`: its SQL and arguments come first, and the next placeholder follows its own.
    pub fn from_query(query: Query) -> Self {
        Self { sql: query.sql, args: query.args }
    }

    /// Appends SQL text. Never put values in it: bind them with [`QueryBuilder::push_bind`].
    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        // Writing into a String cannot fail.
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends the next placeholder (`$N`) and binds `value` to it.
    pub fn push_bind(&mut self, value: impl IntoValue) -> &mut Self {
        self.args.push(value.into_value());
        let n = self.args.len();
        self.push(format_args!("${n}"))
    }

    /// Appends a placeholder for each of `values`, separated by `", "` (an `IN (...)` list's inside).
    pub fn push_binds<V: IntoValue>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        let mut list = self.separated(", ");
        for value in values {
            list.push_bind(value);
        }
        self
    }

    /// Appends `(v1, v2, ...)`: one row of a `VALUES` list, each value bound.
    pub fn push_tuple<V: IntoValue>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.push("(").push_binds(values).push(")")
    }

    /// Appends `a = $n, b = $m, ...`: the assignments of an `UPDATE ... SET`.
    pub fn push_assignments<C: Display, V: IntoValue>(
        &mut self,
        columns: impl IntoIterator<Item = (C, V)>,
    ) -> &mut Self {
        let mut sets = self.separated(", ");
        for (column, value) in columns {
            sets.push(format_args!("{column} = ")).push_bind_unseparated(value);
        }
        self
    }

    /// Appends a [`Filter`], numbering its placeholders after the ones already bound.
    pub fn push_filter(&mut self, filter: Filter) -> &mut Self {
        for part in filter.parts {
            match part {
                Part::Sql(sql) => self.push(sql),
                Part::Bind(value) => self.push_bind(value),
            };
        }
        self
    }

    /// A view that puts `separator` before every piece but the first (a `SET a = $1, b = $2` list, a
    /// `VALUES (...), (...)` list).
    pub fn separated(&mut self, separator: &'static str) -> Separated<'_> {
        Separated { builder: self, separator, first: true }
    }

    /// The SQL so far.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// How many arguments are bound so far.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether no argument is bound yet.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The finished statement.
    pub fn build(self) -> Query {
        Query { sql: self.sql, args: self.args }
    }
}

/// A condition (` AND ...` pieces) with its own arguments, written before the statement it goes into
/// exists: [`QueryBuilder::push_filter`] numbers its placeholders where it lands.
///
/// ```
/// use austa_sql::{Filter, QueryBuilder};
/// let filter = Filter::new().and_eq("patient_id", uuid::Uuid::nil()).and_eq("is_active", true);
/// let mut q = QueryBuilder::new("SELECT * FROM documents WHERE organization_id = ");
/// q.push_bind(uuid::Uuid::nil()).push_filter(filter);
/// assert_eq!(q.sql(), "SELECT * FROM documents WHERE organization_id = $1 AND patient_id = $2 AND is_active = $3");
/// ```
#[derive(Default)]
pub struct Filter {
    parts: Vec<Part>,
}

enum Part {
    Sql(String),
    Bind(Value),
}

impl Filter {
    /// No condition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends SQL text (never values: bind them with [`Filter::push_bind`]).
    pub fn push(mut self, sql: impl Display) -> Self {
        self.parts.push(Part::Sql(sql.to_string()));
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn push_bind(mut self, value: impl IntoValue) -> Self {
        self.parts.push(Part::Bind(value.into_value()));
        self
    }

    /// ` AND column = value`.
    pub fn and_eq(self, column: &'static str, value: impl IntoValue) -> Self {
        self.push(format_args!(" AND {column} = ")).push_bind(value)
    }

    /// ` AND column IN (values...)` (the values must not be empty).
    pub fn and_in<V: IntoValue>(mut self, column: &'static str, values: impl IntoIterator<Item = V>) -> Self {
        self = self.push(format_args!(" AND {column} IN ("));
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self = self.push(", ");
            }
            self = self.push_bind(value);
        }
        self.push(")")
    }

    /// Whether there is no condition.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Pieces of a list with a separator between them; see [`QueryBuilder::separated`].
pub struct Separated<'b> {
    builder: &'b mut QueryBuilder,
    separator: &'static str,
    first: bool,
}

impl Separated<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.builder.push(self.separator);
        }
    }

    /// Appends SQL text as the next piece.
    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.separate();
        self.builder.push(sql);
        self
    }

    /// Appends a placeholder bound to `value` as the next piece.
    pub fn push_bind(&mut self, value: impl IntoValue) -> &mut Self {
        self.separate();
        self.builder.push_bind(value);
        self
    }

    /// Appends SQL text to the current piece, without a separator.
    pub fn push_unseparated(&mut self, sql: impl Display) -> &mut Self {
        self.builder.push(sql);
        self
    }

    /// Appends a placeholder bound to `value` to the current piece, without a separator.
    pub fn push_bind_unseparated(&mut self, value: impl IntoValue) -> &mut Self {
        self.builder.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_binds() {
        let mut q = QueryBuilder::from_query(Query::new("SELECT * FROM t WHERE a = $1").bind(1_i64));
        q.push(" AND b IN (").push_binds(["x", "y"]).push(")");
        let mut sets = q.separated(", ");
        sets.push("c = ").push_bind_unseparated(true);
        sets.push("d = ").push_bind_unseparated(2.5_f64);
        let query = q.build();
        assert_eq!(query.sql, "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)c = $4, d = $5");
        assert_eq!(query.args.len(), 5);
    }
}
