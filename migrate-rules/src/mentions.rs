//! What a file's text says anywhere: the words that make the runner do
//! more work for that file (watch its foreign keys, put a setting back,
//! refuse a write to its own table). Computed once per file, by the macro
//! at compile time or by the loader, so that a run never scans the text of
//! every file again.

/// The name of the history table the runner keeps in each database.
pub const HISTORY_TABLE: &str = "_migrate_history";

/// Which words a file's text contains, anywhere, in any case (comments and
/// string literals included: a false alarm costs the runner only some
/// work, a miss would cost a check).
///
/// ```
/// use migrate_rules::Mentions;
///
/// let m = Mentions::of("CREATE TABLE b (a INTEGER REFERENCES a (id));");
/// assert!(m.references && !m.pragma);
/// assert_eq!(Mentions::from_bits(m.to_bits()), m);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mentions {
    /// `REFERENCES`: the file may create a foreign key.
    pub references: bool,
    /// `ROLLBACK` or `RELEASE`: the file may end a savepoint.
    pub savepoint_control: bool,
    /// `REPLACE`: an insert of the file may delete the rows it conflicts
    /// with (`INSERT OR REPLACE`, `REPLACE INTO`).
    pub replace: bool,
    /// `writable_schema`: the file may write the schema table itself.
    pub writable_schema: bool,
    /// `sqlite_master` or `sqlite_schema`: the file names the schema table
    /// (and may write it, if an earlier file left `writable_schema` on).
    pub schema_table: bool,
    /// `PRAGMA`: the file may change a setting of the connection, which
    /// the runner puts back.
    pub pragma: bool,
    /// `_migrate_history` ([`HISTORY_TABLE`]): the file may write the
    /// history table, which only the runner may.
    pub history: bool,
    /// `DETACH`: the file may detach a database of the caller's, whose
    /// settings the runner then puts back when it attaches it again.
    pub detach: bool,
    /// `RENAME`: the file may rename a table (`ALTER TABLE ... RENAME
    /// TO`), which SQLite's authorizer reports by its old name only; then
    /// the `Changed` integrity check compares the schema before and after.
    pub rename: bool,
}

impl Mentions {
    /// Every word.
    pub const ALL: Mentions = Mentions {
        references: true,
        savepoint_control: true,
        replace: true,
        writable_schema: true,
        schema_table: true,
        pragma: true,
        history: true,
        detach: true,
        rename: true,
    };

    /// The words `sql` contains, found in one pass.
    pub fn of(sql: &str) -> Self {
        let text = sql.as_bytes();
        let mut found = Mentions::default();
        let mut from = 0;
        // The first five words start with R, `pragma` has an R at a known
        // place, the next three have an underscore at a known place, and
        // `detach` ends in an H: look only where an R, a `_` or an H is.
        while let Some(at) = text.get(from..).and_then(|rest| {
            rest.iter()
                .position(|&b| matches!(b | 0x20, b'r' | b'h') || b == b'_')
        }) {
            let at = from + at;
            // Whether `w` is written at `at - back`, in any case.
            let is_at = |back: usize, w: &str| {
                at.checked_sub(back)
                    .and_then(|start| text.get(start..start + w.len()))
                    .is_some_and(|p| p.eq_ignore_ascii_case(w.as_bytes()))
            };
            match text[at] {
                b'_' => {
                    found.writable_schema |= is_at(8, "writable_schema");
                    found.schema_table |= is_at(6, "sqlite_master") || is_at(6, "sqlite_schema");
                    found.history |= is_at(0, HISTORY_TABLE);
                }
                b'h' | b'H' => found.detach |= is_at(5, "detach"),
                _ => {
                    found.references |= is_at(0, "references");
                    found.savepoint_control |= is_at(0, "rollback") || is_at(0, "release");
                    found.replace |= is_at(0, "replace");
                    found.rename |= is_at(0, "rename");
                    found.pragma |= is_at(1, "pragma");
                }
            }
            if found == Mentions::ALL {
                break;
            }
            from = at + 1;
        }
        found
    }

    /// The words either says.
    #[must_use]
    pub const fn union(self, other: Mentions) -> Self {
        Mentions {
            references: self.references || other.references,
            savepoint_control: self.savepoint_control || other.savepoint_control,
            replace: self.replace || other.replace,
            writable_schema: self.writable_schema || other.writable_schema,
            schema_table: self.schema_table || other.schema_table,
            pragma: self.pragma || other.pragma,
            history: self.history || other.history,
            detach: self.detach || other.detach,
            rename: self.rename || other.rename,
        }
    }

    /// One bit per word, for the macro to write as a literal.
    pub const fn to_bits(self) -> u16 {
        (self.references as u16)
            | (self.savepoint_control as u16) << 1
            | (self.replace as u16) << 2
            | (self.writable_schema as u16) << 3
            | (self.schema_table as u16) << 4
            | (self.pragma as u16) << 5
            | (self.history as u16) << 6
            | (self.detach as u16) << 7
            | (self.rename as u16) << 8
    }

    /// The inverse of [`Mentions::to_bits`].
    pub const fn from_bits(bits: u16) -> Self {
        Mentions {
            references: bits & 1 != 0,
            savepoint_control: bits & 1 << 1 != 0,
            replace: bits & 1 << 2 != 0,
            writable_schema: bits & 1 << 3 != 0,
            schema_table: bits & 1 << 4 != 0,
            pragma: bits & 1 << 5 != 0,
            history: bits & 1 << 6 != 0,
            detach: bits & 1 << 7 != 0,
            rename: bits & 1 << 8 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn contains(text: &str, needle: &str) -> bool {
        text.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    }

    /// The one-pass scan finds each word in any case, anywhere, and only
    /// whole spellings of it.
    #[test]
    fn finds_each_word() {
        let none = Mentions::default();
        let refs = Mentions {
            references: true,
            ..none
        };
        let control = Mentions {
            savepoint_control: true,
            ..none
        };
        let both = Mentions {
            references: true,
            savepoint_control: true,
            ..none
        };
        let replace = Mentions {
            replace: true,
            ..none
        };
        let detach = Mentions {
            detach: true,
            ..none
        };
        for (sql, expected) in [
            ("", none),
            ("r", none),
            ("CREATE TABLE t (x);", none),
            ("referencing reference REFERENCE", none),
            ("rollbac releas", none),
            ("a INTEGER REFERENCES b(id)", refs),
            ("a references", refs),
            ("rreferences", refs),
            ("ROLLBACK TO sp", control),
            ("-- release notes", control),
            ("x rOlLbAcK", control),
            ("RELEASE sp; CREATE TABLE c (p REFERENCES p)", both),
            ("é references rollback é", both),
            ("INSERT OR REPLACE INTO t VALUES (1)", replace),
            ("replace into t values (1)", replace),
            ("replac", none),
            (
                "RePlAcE references release",
                Mentions {
                    references: true,
                    savepoint_control: true,
                    replace: true,
                    ..none
                },
            ),
            (
                "PRAGMA Writable_Schema = ON",
                Mentions {
                    writable_schema: true,
                    pragma: true,
                    ..none
                },
            ),
            (
                "UPDATE SQLITE_SCHEMA SET sql = ''",
                Mentions {
                    schema_table: true,
                    ..none
                },
            ),
            (
                "PRAGMA Synchronous = OFF",
                Mentions {
                    pragma: true,
                    ..none
                },
            ),
            ("pragm ragma", none),
            (
                "DELETE FROM main._Migrate_History",
                Mentions {
                    history: true,
                    ..none
                },
            ),
            ("DETACH DATABASE aux", detach),
            ("detach aux", detach),
            ("hdetach", detach),
            ("detac etach h", none),
            (
                "ALTER TABLE a RENAME TO b",
                Mentions {
                    rename: true,
                    ..none
                },
            ),
            (
                "ReNaMe",
                Mentions {
                    rename: true,
                    ..none
                },
            ),
            ("renam enam", none),
        ] {
            assert_eq!(Mentions::of(sql), expected, "{sql:?}");
        }
    }

    /// The one-pass scan agrees with a search for each word, wherever the
    /// words and look-alikes are placed.
    #[test]
    fn agrees_with_a_search_for_each_word() {
        let parts = [
            "",
            "x",
            "_",
            "r",
            "R",
            "h",
            " ",
            "references",
            "ROLLBACK",
            "release",
            "Replace",
            "writable_schema",
            "WRITABLE_SCHEMA",
            "sqlite_master",
            "sqlite_schema",
            "SQLITE_SCHEMA",
            "writable_",
            "sqlite_",
            "_master",
            "pragma",
            "PRAGMA",
            "prag",
            "_migrate_history",
            "_MIGRATE_",
            "detach",
            "DeTaCh",
            "detac",
            "rename",
            "RENAME",
            "renam",
            "é",
        ];
        let naive = |sql: &str| Mentions {
            references: contains(sql, "references"),
            savepoint_control: contains(sql, "rollback") || contains(sql, "release"),
            replace: contains(sql, "replace"),
            writable_schema: contains(sql, "writable_schema"),
            schema_table: contains(sql, "sqlite_master") || contains(sql, "sqlite_schema"),
            pragma: contains(sql, "pragma"),
            history: contains(sql, "_migrate_history"),
            detach: contains(sql, "detach"),
            rename: contains(sql, "rename"),
        };
        for a in parts {
            for b in parts {
                for c in parts {
                    let sql = format!("{a}{b}{c}");
                    assert_eq!(Mentions::of(&sql), naive(&sql), "{sql:?}");
                }
            }
        }
    }

    /// Every combination of words survives the bits the macro writes.
    #[test]
    fn bits_round_trip() {
        for bits in 0..=0x1ff_u16 {
            let m = Mentions::from_bits(bits);
            assert_eq!(m.to_bits(), bits);
            assert_eq!(Mentions::from_bits(m.to_bits()), m);
        }
        assert_eq!(Mentions::ALL.to_bits(), 0x1ff);
        assert_eq!(
            Mentions::default().union(Mentions::of("detach")),
            Mentions::of("detach")
        );
    }
}
