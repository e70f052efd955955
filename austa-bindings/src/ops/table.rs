//! `table_ops!`: the generic operations of one stored model's table.
//!
//! `table_ops!("patients", Patient, NewPatient, PatientPatch: get, list, create, create_many,
//! update, delete, restore);` in the table's module declares, for each capability named, the
//! operation struct of that name (`Get`, `List`, `Create`, `CreateMany`, `Update`, `Delete`,
//! `Restore`) with the name `patients.<capability>`:
//!
//! * `get {id}`: the live row; `not_found` otherwise.
//! * `list {limit?, after?}`: one page of live rows, oldest first.
//! * `create {data}`: one row from the model's input, with its audit event, in one transaction.
//! * `create_many {rows, count_only?}`: rows in one transaction with one audit event; every bad row
//!   is reported at once (a batch error) and nothing is written. `count_only` answers
//!   `{"count": n}` instead of the rows, for imports that do not need them back.
//! * `update {id, patch}`: the fields the patch names; the row as stored.
//! * `delete {id}`, `restore {id}`: soft deletion and its undoing.

macro_rules! table_ops {
    ($table:literal, $model:ty, $new:ty, $patch:ty: $($capability:ident),+ $(,)?) => {
        $(table_ops!(@$capability $table, $model, $new, $patch);)+
    };
    (@get $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// The live row with this id; `not_found` otherwise.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Get {
            /// The row's id.
            pub id: uuid::Uuid,
        }

        impl $crate::ops::ScopeOperation for Get {
            const NAME: &'static str = concat!($table, ".get");
            type Output = $model;
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<$model> {
                scope.repo::<$model>().get(self.id).await
            }
        }
    };
    (@list $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// One page of live rows, oldest first (`limit` defaults to 50, at most 500).
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct List {
            /// Rows per page.
            pub limit: Option<u32>,
            /// The previous page's `next` cursor.
            pub after: Option<String>,
        }

        impl $crate::ops::ScopeOperation for List {
            const NAME: &'static str = concat!($table, ".list");
            type Output = austa_core::repo::Page<$model>;
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<Self::Output> {
                scope.repo::<$model>().list($crate::ops::page(self.limit, self.after)?).await
            }
        }
    };
    (@create $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// Creates one row; the row, its audit event and any outbox entry are one transaction.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Create {
            /// The new row's fields.
            pub data: $new,
        }

        impl $crate::ops::ScopeOperation for Create {
            const NAME: &'static str = concat!($table, ".create");
            type Output = $model;
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<$model> {
                scope.repo::<$model>().create(self.data).await
            }
        }
    };
    (@create_many $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// Creates rows in one transaction with one audit event; a bad row fails the batch, which
        /// reports every bad row and writes nothing.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct CreateMany {
            /// The new rows, each decoded and reported on its own.
            pub rows: Vec<serde_json::Value>,
            /// Answer `{"count": n}` instead of the created rows.
            pub count_only: Option<bool>,
        }

        impl $crate::ops::ScopeOperation for CreateMany {
            const NAME: &'static str = concat!($table, ".create_many");
            type Output = serde_json::Value;
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<serde_json::Value> {
                let decoded = self.rows.into_iter().map(austa_core::input::from_json::<$new>);
                let created = scope.repo::<$model>().create_many_decoded(decoded).await?;
                if self.count_only.unwrap_or(false) {
                    Ok(serde_json::json!({"count": created.len()}))
                } else {
                    $crate::ops::to_json(created)
                }
            }
        }
    };
    (@update $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// Changes the fields the patch names (a field set to null is cleared where that is
        /// allowed); the row as stored.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Update {
            /// The row's id.
            pub id: uuid::Uuid,
            /// The fields to change.
            pub patch: $patch,
        }

        impl $crate::ops::ScopeOperation for Update {
            const NAME: &'static str = concat!($table, ".update");
            type Output = $model;
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<$model> {
                scope.repo::<$model>().update(self.id, self.patch).await
            }
        }
    };
    (@delete $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// Soft-deletes one row: it disappears from reads until restored.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Delete {
            /// The row's id.
            pub id: uuid::Uuid,
        }

        impl $crate::ops::ScopeOperation for Delete {
            const NAME: &'static str = concat!($table, ".delete");
            type Output = ();
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<()> {
                scope.repo::<$model>().delete(self.id).await
            }
        }
    };
    (@restore $table:literal, $model:ty, $new:ty, $patch:ty) => {
        /// Restores a soft-deleted row.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Restore {
            /// The row's id.
            pub id: uuid::Uuid,
        }

        impl $crate::ops::ScopeOperation for Restore {
            const NAME: &'static str = concat!($table, ".restore");
            type Output = ();
            async fn run(self, scope: &austa_core::Scope) -> austa_core::Result<()> {
                scope.repo::<$model>().restore(self.id).await
            }
        }
    };
}
