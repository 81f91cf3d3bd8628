//! `pg_catalog` and `information_schema` over Laminar's catalog, for psql's `\d` family,
//! drivers' metadata calls and BI tools.
//!
//! The tables come from the `datafusion-pg-catalog` crate (pg_class, pg_attribute, pg_type,
//! ...) and DataFusion's own information_schema. Both read a long-lived snapshot of the
//! catalog: one provider for the server's life, so the OIDs psql reads in one query still
//! name the same table in the next.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};

use arrow::array::{ArrayRef, ListBuilder, StringArray, StringBuilder};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session as DfSession, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{ObjectName, Statement, visit_relations};
use datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use crate::error::{EngineError, Result};
use crate::exec::information_schema::PostgresInformationSchema;
use crate::exec::pg_catalog::PgCatalog;

/// The database name clients see (`current_database()`, `pg_database`, `\l`).
pub const DATABASE: &str = "laminar";
/// The Postgres version Laminar speaks, as `version()` and `server_version` report it.
pub const SERVER_VERSION: &str = "15.0";

const CATALOG_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// Whether a relation name is a system catalog: schema-qualified with `pg_catalog` or
/// `information_schema`, or an unqualified `pg_catalog` table (pg_catalog is implicitly
/// first on every search path, as in Postgres).
pub fn is_catalog_relation(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
        .collect();
    match parts.as_slice() {
        [table] => PG_CATALOG_TABLES.contains(&table.as_str()),
        [.., schema, _] => CATALOG_SCHEMAS.contains(&schema.as_str()),
        [] => false,
    }
}

/// How a query relates to the system catalogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogUse {
    /// Reads system catalogs (and maybe user tables).
    Reads,
    /// Reads no table at all (`SELECT version()`, `SELECT 1`): catalog functions may appear.
    NoTables,
    /// Reads user tables only.
    None,
}

/// How `statement` uses the system catalogs.
pub fn catalog_use(statement: &Statement) -> CatalogUse {
    if !matches!(statement, Statement::Query(_)) {
        return CatalogUse::None;
    }
    let mut any = false;
    let mut catalog = false;
    let _ = visit_relations(statement, |name| {
        any = true;
        catalog |= is_catalog_relation(name);
        std::ops::ControlFlow::<()>::Continue(())
    });
    match (catalog, any) {
        (true, _) => CatalogUse::Reads,
        (false, false) => CatalogUse::NoTables,
        (false, true) => CatalogUse::None,
    }
}

/// Rewrite a catalog query the way tools send it into SQL DataFusion plans (regclass
/// casts, `OPERATOR(pg_catalog.~)`, psql's policy/publication queries, ...). `sql` is the
/// statement's own text: some rules match the exact tokens tools send.
pub fn rewrite_catalog_query(sql: &str) -> Result<Statement> {
    static PARSER: LazyLock<PostgresCompatibilityParser> =
        LazyLock::new(PostgresCompatibilityParser::new);
    let sql = apply_tool_fixes(sql);
    let mut statements = PARSER
        .parse(&sql)
        .map_err(|e| EngineError::Syntax(e.to_string()))?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        _ => Err(EngineError::Syntax(
            "expected exactly one catalog query".into(),
        )),
    }
}

/// How to answer a query a tool sends that DataFusion cannot plan as written.
enum ToolFix {
    /// Replace this fragment with an equivalent one.
    Fragment(&'static str, &'static str),
    /// Replace what this regex matches (in the whitespace-collapsed query); `$1` in the
    /// replacement stands for the first group.
    Pattern(&'static str, &'static str),
    /// A query about indexes or keys (Laminar has none) recognised by this fragment:
    /// answer with no rows and the columns the tool reads.
    Empty(&'static str, &'static str),
}

/// Fragments match whatever whitespace the tool puts between their tokens.
const TOOL_FIXES: &[ToolFix] = &[
    // Grafana: the schemas on the search path, spelled with generate_series over
    // string_to_array subscripts, which DataFusion cannot plan.
    ToolFix::Fragment(
        "IN ( SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END FROM generate_series( array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1) ) as i, string_to_array(current_setting('search_path'),',') s )",
        "= ANY(pg_catalog.current_schemas(false))",
    ),
    // psql \d+: table options of the TOAST table (an unnest in FROM over an outer column).
    ToolFix::Fragment(
        "pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')",
        "NULL::text",
    ),
    // pgJDBC TypeInfoCache and pgcli's type list: a scalar subquery DataFusion wants aggregated.
    ToolFix::Fragment(
        "(SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid)",
        "EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')",
    ),
    // pgJDBC array types: regproc comparison and search-path ranks from generate_series.
    ToolFix::Fragment(
        "typinput='pg_catalog.array_in'::regproc",
        "typcategory = 'A'",
    ),
    ToolFix::Fragment(
        "LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp",
        "LEFT JOIN (select ns.oid as nspoid, ns.nspname, 1 as r from pg_namespace as ns where ns.nspname = 'public') as sp",
    ),
    // SQLAlchemy's get_columns (Superset, pandas): per-column subqueries for defaults,
    // identity sequences and collations, correlated inside CASE. Laminar has none of the
    // three, so each is NULL. (The tokenizer writes `!=` as `<>`.)
    ToolFix::Pattern(
        r#"CASE WHEN pg_catalog\.pg_attribute\.atthasdef THEN \(SELECT pg_catalog\.pg_get_expr\(.*? ELSE NULL END AS "default""#,
        r#"NULL AS "default""#,
    ),
    ToolFix::Pattern(
        r"CASE WHEN \(pg_catalog\.pg_attribute\.attidentity (?:!=|<>) (?:'[^']*'|\$\d+(?:::\w+)?)\) THEN \(SELECT json_build_object\(.*? ELSE NULL END AS identity_options",
        "NULL AS identity_options",
    ),
    ToolFix::Pattern(
        r"CASE WHEN \(pg_catalog\.pg_attribute\.attcollation (?:!=|<>) .*? ELSE NULL END AS collation",
        "NULL AS collation",
    ),
    // SQLAlchemy's psycopg (3) dialect sends the name in `CAST('pg_catalog.pg_constraint' AS
    // REGCLASS)` as a parameter: look the relation up by name (qualified or not).
    ToolFix::Pattern(
        r"CAST\((\$\d+) AS REGCLASS\)",
        "(SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 OR n.nspname || '.' || c.relname = $1 LIMIT 1)",
    ),
    // SQLAlchemy get_schema_names: `LIKE 'pg/_%' ESCAPE '/'` (DataFusion escapes with `\`
    // only) for "starts with pg_".
    ToolFix::Pattern(
        r"pg_catalog\.pg_namespace\.nspname NOT LIKE (?:\$\d+(?:::\w+)?|'pg/_') \|\| '%' ESCAPE '/'",
        "NOT starts_with(pg_catalog.pg_namespace.nspname, 'pg_')",
    ),
    // asyncpg's type lookup (it learns array and other non-builtin result types with it):
    // correlated subqueries for a domain's base type and a composite type's attributes.
    // Laminar has no domains of domains and sends no composite values, so the domain's own
    // base type and NULL lists answer the same (both text[]: asyncpg decodes text[] without
    // a lookup of its own, but would look up int4[] with this same query, endlessly).
    ToolFix::Pattern(
        r"\( ?CASE WHEN t\.typtype = 'd' THEN \( ?WITH RECURSIVE typebases.*? LIMIT 1 ?\) ELSE NULL END ?\)",
        "(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE NULL END)",
    ),
    ToolFix::Pattern(
        r"\( ?CASE WHEN t\.typtype = 'c' THEN \( ?SELECT array_agg\(ia\.atttypid ORDER BY ia\.attnum\).*? ELSE NULL END ?\)",
        "CAST(NULL AS TEXT[])",
    ),
    ToolFix::Pattern(
        r"\( ?CASE WHEN t\.typtype = 'c' THEN \( ?SELECT array_agg\(ia\.attname::text ORDER BY ia\.attnum\).*? ELSE NULL END ?\)",
        "CAST(NULL AS TEXT[])",
    ),
    // SQLAlchemy get_pk_constraint / get_unique_constraints (Laminar has no constraints).
    ToolFix::Empty(
        "array_agg(CAST(attr.attname AS TEXT) ORDER BY attr.ord) AS cols, attr.conname",
        "SELECT NULL::int AS conrelid, NULL::text[] AS cols, NULL::text AS conname, NULL::text AS description, NULL::int AS indnkeyatts, NULL::boolean AS indnullsnotdistinct WHERE false",
    ),
    // SQLAlchemy get_indexes (no indexes).
    ToolFix::Empty(
        "pg_catalog.pg_constraint.conrelid IS NOT NULL AS has_constraint, pg_catalog.pg_index.indoption",
        "SELECT NULL::int AS indrelid, NULL::text AS relname, NULL::boolean AS indisunique WHERE false",
    ),
    // pgJDBC getPrimaryKeys.
    ToolFix::Empty(
        "(information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME",
        "SELECT NULL::text AS TABLE_CAT, NULL::text AS TABLE_SCHEM, NULL::text AS TABLE_NAME, NULL::text AS COLUMN_NAME, NULL::smallint AS KEY_SEQ, NULL::text AS PK_NAME WHERE false",
    ),
    // pgJDBC getImportedKeys / getExportedKeys.
    ToolFix::Empty(
        "pg_catalog.generate_series(1, 32) pos(n)",
        "SELECT NULL::text AS PKTABLE_CAT, NULL::text AS PKTABLE_SCHEM, NULL::text AS PKTABLE_NAME, NULL::text AS PKCOLUMN_NAME, NULL::text AS FKTABLE_CAT, NULL::text AS FKTABLE_SCHEM, NULL::text AS FKTABLE_NAME, NULL::text AS FKCOLUMN_NAME, NULL::smallint AS KEY_SEQ, NULL::smallint AS UPDATE_RULE, NULL::smallint AS DELETE_RULE, NULL::text AS FK_NAME, NULL::text AS PK_NAME, NULL::smallint AS DEFERRABILITY WHERE false",
    ),
    // pgJDBC getIndexInfo.
    ToolFix::Empty(
        "tmp.I_INDOPTION[tmp.ORDINAL_POSITION - 1]",
        "SELECT NULL::text AS TABLE_CAT, NULL::text AS TABLE_SCHEM, NULL::text AS TABLE_NAME, NULL::boolean AS NON_UNIQUE, NULL::text AS INDEX_QUALIFIER, NULL::text AS INDEX_NAME, NULL::smallint AS TYPE, NULL::smallint AS ORDINAL_POSITION, NULL::text AS COLUMN_NAME, NULL::text AS ASC_OR_DESC, NULL::bigint AS CARDINALITY, NULL::bigint AS PAGES, NULL::text AS FILTER_CONDITION WHERE false",
    ),
];

/// `sql` with whitespace runs outside string literals and quoted names collapsed to one
/// space, then every matching [`TOOL_FIXES`] entry applied.
fn apply_tool_fixes(sql: &str) -> String {
    let mut collapsed = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.trim().chars() {
        match quote {
            Some(q) => {
                collapsed.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !collapsed.ends_with(' ') {
                    collapsed.push(' ');
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                collapsed.push(c);
            }
        }
    }
    // `x::regtype::text` names a type (pgcli's completions); the compatibility rules would
    // drop the regtype cast and leave the number.
    static REGTYPE_TEXT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
        regex::Regex::new(
            r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)::(?:pg_catalog\.)?regtype::(?:pg_catalog\.)?text\b",
        )
        .ok()
    });
    if let Some(regtype_text) = REGTYPE_TEXT.as_ref() {
        collapsed = regtype_text
            .replace_all(&collapsed, "pg_catalog.format_type($1, NULL)")
            .into_owned();
    }
    static FIXES: LazyLock<Vec<(Option<regex::Regex>, &'static ToolFix)>> = LazyLock::new(|| {
        TOOL_FIXES
            .iter()
            .map(|fix| {
                let pattern = match fix {
                    ToolFix::Fragment(fragment, _) | ToolFix::Empty(fragment, _) => {
                        fragment_pattern(fragment)
                    }
                    ToolFix::Pattern(pattern, _) => format!("(?s){pattern}"),
                };
                (regex::Regex::new(&pattern).ok(), fix)
            })
            .collect()
    });
    for (pattern, fix) in FIXES.iter() {
        let Some(pattern) = pattern else { continue };
        match fix {
            ToolFix::Fragment(_, to) => {
                collapsed = pattern
                    .replace_all(&collapsed, regex::NoExpand(to))
                    .into_owned();
            }
            // `$1` in the replacement is the pattern's first group.
            ToolFix::Pattern(_, to) => {
                collapsed = pattern.replace_all(&collapsed, *to).into_owned();
            }
            ToolFix::Empty(_, query) if pattern.is_match(&collapsed) => {
                return (*query).to_string();
            }
            ToolFix::Empty(..) => {}
        }
    }
    collapsed
}

/// A regex for `fragment` that allows any whitespace between its tokens (and requires
/// some between two words).
fn fragment_pattern(fragment: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in fragment.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    let is_word = |t: &str| t.chars().all(|c| c.is_alphanumeric() || c == '_');
    let mut pattern = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            pattern.push_str(if is_word(&tokens[i - 1]) && is_word(token) {
                r"\s+"
            } else {
                r"\s*"
            });
        }
        pattern.push_str(&regex::escape(token));
    }
    pattern
}

/// A catalog object as the system catalogs describe it: a name, columns and a kind.
#[derive(Debug, Clone)]
pub struct CatalogObject {
    pub name: String,
    pub schema: SchemaRef,
    pub view: bool,
    pub materialized: bool,
}

/// Whether a resolved table reference names a system catalog table.
pub fn is_catalog_reference(reference: &datafusion::sql::TableReference) -> bool {
    match reference.schema() {
        Some(schema) => CATALOG_SCHEMAS.contains(&schema.to_ascii_lowercase().as_str()),
        None => PG_CATALOG_TABLES.contains(&reference.table().to_ascii_lowercase().as_str()),
    }
}

/// The system catalogs, shared by every session for the server's life.
pub struct Introspection {
    user_tables: Arc<UserTables>,
    pg_catalog: Arc<dyn SchemaProvider>,
    information_schema: Arc<dyn SchemaProvider>,
    functions: Vec<ScalarUDF>,
    table_functions: Vec<(String, Arc<dyn TableFunctionImpl>)>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection").finish_non_exhaustive()
    }
}

impl Introspection {
    pub fn new() -> Result<Self> {
        let config = SessionConfig::new().with_default_catalog_and_schema(DATABASE, "public");
        let ctx = SessionContext::new_with_config(config);
        let user_tables = Arc::new(UserTables::default());
        let catalog = ctx.catalog(DATABASE).ok_or_else(|| {
            EngineError::DataFusion(DataFusionError::Internal(format!(
                "catalog '{DATABASE}' was not created"
            )))
        })?;
        catalog.register_schema("public", user_tables.clone())?;
        let builtin: HashSet<String> = ctx.state().scalar_functions().keys().cloned().collect();
        let builtin_tables: HashSet<String> =
            ctx.state().table_functions().keys().cloned().collect();
        datafusion_pg_catalog::setup_pg_catalog(&ctx, DATABASE, EmptyContextProvider)
            .map_err(|e| EngineError::DataFusion(*e))?;
        let pg_catalog = catalog.schema("pg_catalog").ok_or_else(|| {
            EngineError::DataFusion(DataFusionError::Internal(
                "pg_catalog schema was not registered".to_string(),
            ))
        })?;
        let information_schema: Arc<dyn SchemaProvider> = Arc::new(PostgresInformationSchema::new(
            ctx.state().catalog_list().clone(),
        ));
        let state = ctx.state();
        let mut functions: Vec<ScalarUDF> = state
            .scalar_functions()
            .iter()
            .filter(|(name, _)| !builtin.contains(*name))
            .map(|(_, f)| f.as_ref().clone())
            .collect();
        functions.extend(laminar_catalog_functions());
        let table_functions = state
            .table_functions()
            .iter()
            .filter(|(name, _)| !builtin_tables.contains(*name))
            .map(|(name, f)| (name.clone(), f.function().clone()))
            .collect();
        Ok(Introspection {
            user_tables,
            pg_catalog,
            information_schema,
            functions,
            table_functions,
        })
    }

    /// Make the system catalogs and their functions visible in `ctx`, with `settings`
    /// (the session's) behind `current_setting()`.
    pub fn install(&self, ctx: &SessionContext, settings: BTreeMap<String, String>) -> Result<()> {
        let catalog_name = ctx
            .state()
            .config()
            .options()
            .catalog
            .default_catalog
            .clone();
        let catalog = ctx.catalog(&catalog_name).ok_or_else(|| {
            EngineError::DataFusion(DataFusionError::Internal(format!(
                "default catalog '{catalog_name}' is missing"
            )))
        })?;
        catalog.register_schema(
            "pg_catalog",
            Arc::new(PgCatalog::new(
                self.pg_catalog.clone(),
                self.user_tables.clone(),
                settings.clone(),
            )),
        )?;
        catalog.register_schema("information_schema", self.information_schema.clone())?;
        for function in &self.functions {
            ctx.register_udf(function.clone());
        }
        let user = settings
            .get("session_authorization")
            .cloned()
            .unwrap_or_else(|| DATABASE.to_string());
        for name in ["session_user", "current_user"] {
            ctx.register_udf(ConstantFunction::udf(
                name,
                ScalarValue::Utf8(Some(user.clone())),
            ));
        }
        ctx.register_udf(current_setting_udf(settings));
        for (name, function) in &self.table_functions {
            ctx.register_udtf(name, function.clone());
        }
        Ok(())
    }

    /// Replace the user tables the catalogs describe.
    pub fn refresh(&self, objects: Vec<CatalogObject>) {
        let materialized: HashSet<String> = objects
            .iter()
            .filter(|o| o.materialized)
            .map(|o| o.name.clone())
            .collect();
        match self.user_tables.materialized.write() {
            Ok(mut guard) => *guard = materialized,
            Err(poisoned) => *poisoned.into_inner() = materialized,
        }
        let tables = objects
            .into_iter()
            .map(|o| {
                let table: Arc<dyn TableProvider> = Arc::new(Described {
                    schema: o.schema,
                    table_type: if o.view {
                        TableType::View
                    } else {
                        TableType::Base
                    },
                });
                (o.name, table)
            })
            .collect();
        match self.user_tables.tables.write() {
            Ok(mut guard) => *guard = tables,
            Err(poisoned) => *poisoned.into_inner() = tables,
        }
    }
}

/// A catalog function whose answer does not depend on its arguments: Laminar has no
/// indexes, constraints, user functions or comments, so these describe "nothing".
#[derive(Debug, PartialEq, Eq, Hash)]
struct ConstantFunction {
    name: &'static str,
    signature: Signature,
    value: ScalarValue,
}

impl ConstantFunction {
    fn udf(name: &'static str, value: ScalarValue) -> ScalarUDF {
        ScalarUDF::new_from_impl(ConstantFunction {
            name,
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Stable,
            ),
            value,
        })
    }
}

impl ScalarUDFImpl for ConstantFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(
        &self,
        _args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}

/// Catalog functions Laminar answers itself (the crate's name another database, or are
/// missing).
fn laminar_catalog_functions() -> Vec<ScalarUDF> {
    let text = |v: &str| ScalarValue::Utf8(Some(v.to_string()));
    let no_text = ScalarValue::Utf8(None);
    vec![
        ConstantFunction::udf("current_database", text(DATABASE)),
        ConstantFunction::udf(
            "version",
            text(&format!(
                "PostgreSQL {SERVER_VERSION} (Laminar {}) on x86_64-pc-linux-gnu, 64-bit",
                env!("CARGO_PKG_VERSION")
            )),
        ),
        ConstantFunction::udf("pg_function_is_visible", ScalarValue::Boolean(Some(true))),
        ConstantFunction::udf("pg_get_function_result", no_text.clone()),
        ConstantFunction::udf("pg_get_function_arguments", no_text.clone()),
        ConstantFunction::udf("pg_get_function_identity_arguments", no_text.clone()),
        ConstantFunction::udf("pg_get_indexdef", no_text.clone()),
        ConstantFunction::udf("pg_get_viewdef", no_text.clone()),
        ConstantFunction::udf("pg_get_triggerdef", no_text.clone()),
        ConstantFunction::udf("obj_description", no_text.clone()),
        ConstantFunction::udf("col_description", no_text.clone()),
        ConstantFunction::udf("shobj_description", no_text),
        // No column defaults, check constraints or partition bounds: NULL, not ''.
        ConstantFunction::udf("pg_get_expr", no_text_null()),
        ConstantFunction::udf("pg_get_partkeydef", no_text_null()),
        // No extension types (SQLAlchemy asks for hstore's).
        ConstantFunction::udf("to_regtype", no_text_null()),
        current_schemas_udf(),
        // asyncpg's pool resets sessions with it; Laminar has no advisory locks.
        ConstantFunction::udf("pg_advisory_unlock_all", ScalarValue::Null),
        set_config_udf(),
    ]
}

fn no_text_null() -> ScalarValue {
    ScalarValue::Utf8(None)
}

/// `current_schemas(include_implicit)`: the search path, pg_catalog first when implicit
/// schemas are included (as PostgreSQL orders it).
fn current_schemas_udf() -> ScalarUDF {
    create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        DataType::List(Arc::new(arrow::datatypes::Field::new_list_field(
            DataType::Utf8,
            true,
        ))),
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let flags = datafusion::common::cast::as_boolean_array(&arrays[0])?;
            let mut lists = ListBuilder::new(StringBuilder::new());
            for implicit in flags.iter() {
                if implicit.unwrap_or(false) {
                    lists.values().append_value("pg_catalog");
                }
                lists.values().append_value("public");
                lists.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(lists.finish()) as ArrayRef))
        }),
    )
}

/// `set_config(name, value, is_local)` as drivers call it while introspecting: answers
/// `value`. (A function cannot change the session; `SET` does.)
fn set_config_udf() -> ScalarUDF {
    create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| Ok(args[1].clone())),
    )
}

/// `current_setting(name)` over one session's settings.
fn current_setting_udf(settings: BTreeMap<String, String>) -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let names = ColumnarValue::values_to_arrays(args)?;
            let names = datafusion::common::cast::as_string_array(&names[0])?;
            let values: StringArray = names
                .iter()
                .map(|name| name.and_then(|n| settings.get(&n.to_ascii_lowercase()).cloned()))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(values) as ArrayRef))
        }),
    )
}

/// The `public` schema as the catalogs see it: names, columns and kinds of Laminar's
/// tables and views (never their data).
#[derive(Debug, Default)]
pub(crate) struct UserTables {
    tables: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
    materialized: RwLock<HashSet<String>>,
}

impl UserTables {
    /// The columns of a table or view.
    pub(crate) fn schema_of(&self, name: &str) -> Option<SchemaRef> {
        self.read().get(name).map(|t| t.schema())
    }

    /// Whether `name` is a materialized view.
    pub(crate) fn is_materialized(&self, name: &str) -> bool {
        match self.materialized.read() {
            Ok(guard) => guard.contains(name),
            Err(poisoned) => poisoned.into_inner().contains(name),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<dyn TableProvider>>> {
        match self.tables.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[async_trait]
impl SchemaProvider for UserTables {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        Ok(self.read().get(name).cloned())
    }

    fn table_exist(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }
}

/// A table's description: its columns and whether it is a view.
#[derive(Debug)]
struct Described {
    schema: SchemaRef,
    table_type: TableType,
}

#[async_trait]
impl TableProvider for Described {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> std::result::Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        Ok(Arc::new(EmptyExec::new(schema)))
    }
}

impl crate::Engine {
    /// The system catalogs, built on first use.
    pub(crate) fn introspection(&self) -> Result<&Introspection> {
        self.introspection
            .get_or_init(|| Introspection::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| {
                EngineError::DataFusion(DataFusionError::Internal(format!(
                    "cannot set up pg_catalog: {e}"
                )))
            })
    }

    /// Point the system catalogs at the tables and views that exist now.
    pub(crate) async fn refresh_introspection(&self) -> Result<()> {
        let mut objects = Vec::new();
        for table in self.catalog.tables().await? {
            // A table whose connector no longer resolves is left out, not an error for
            // every catalog query.
            if let Ok(resolved) = self.resolve_table(&table.name).await {
                objects.push(CatalogObject {
                    name: table.name,
                    schema: resolved.schema,
                    view: false,
                    materialized: false,
                });
            }
        }
        for view in self.catalog.views().await? {
            let schema = if view.materialized {
                self.materialized_view(&view.name)
                    .map(|batch| batch.schema())
            } else {
                Box::pin(self.view_schema(&view.name)).await
            };
            if let Ok(schema) = schema {
                objects.push(CatalogObject {
                    name: view.name,
                    schema,
                    view: true,
                    materialized: view.materialized,
                });
            }
        }
        self.introspection()?.refresh(objects);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::{LaminarStatement, parse_sql};

    fn statement(sql: &str) -> Statement {
        match parse_sql(sql).unwrap().pop().unwrap() {
            LaminarStatement::Sql(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tool_fixes_ignore_whitespace() {
        let pgcli = "WHERE ( t.typrelid = 0 OR (  SELECT c.relkind = 'c'\n  FROM pg_catalog.pg_class c\n WHERE c.oid = t.typrelid\n ) )";
        assert_eq!(
            apply_tool_fixes(pgcli),
            "WHERE ( t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c') )"
        );
        let grafana = "quote_ident(table_schema) IN (\n SELECT\n CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END\n FROM\n generate_series(\n array_lower(string_to_array(current_setting('search_path'),','),1),\n array_upper(string_to_array(current_setting('search_path'),','),1)\n ) as i,\n string_to_array(current_setting('search_path'),',') s\n )";
        assert_eq!(
            apply_tool_fixes(grafana),
            "quote_ident(table_schema) = ANY(pg_catalog.current_schemas(false))"
        );
    }

    #[test]
    fn catalog_relations_are_recognised() {
        assert_eq!(
            catalog_use(&statement("SELECT * FROM pg_catalog.pg_class")),
            CatalogUse::Reads
        );
        assert_eq!(
            catalog_use(&statement("SELECT * FROM pg_namespace")),
            CatalogUse::Reads
        );
        assert_eq!(
            catalog_use(&statement("SELECT * FROM information_schema.tables")),
            CatalogUse::Reads
        );
        assert_eq!(
            catalog_use(&statement("SELECT version()")),
            CatalogUse::NoTables
        );
        assert_eq!(
            catalog_use(&statement("SELECT * FROM orders")),
            CatalogUse::None
        );
        assert_eq!(
            catalog_use(&statement("SELECT * FROM tables")),
            CatalogUse::None
        );
    }
}
