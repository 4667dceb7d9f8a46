{#- The incremental candidates (docs/dbt.md, "Incremental candidates"). An incremental build of
    int_matching_candidates recomputes only the lines int_matching_dirty_lines names, and
    deletes their rows before inserting what was recomputed (strategy replace_dirty_lines below).
    To know which lines a change can reach, it keeps what the table was last computed from,
    written in the same transaction as the table itself (matching_seen_sync, a post-hook of the
    model), so that it always describes the table:

    - int_matching_seen_lines: every invoice line as the matching read it, with the keys its
      reference gives (dossier numbers, readings one slip away, words), so that "which old lines
      hold this new number or name" is an equality join, not a regular expression per line, and
      whether a rule matched it (`ruled`: the clues are looked up among the others, indexed);
    - int_matching_seen_open_amounts: a copy of int_matching_open_amounts;
    - int_matching_before_names, int_matching_before_amounts, int_matching_before_keys,
      int_matching_before_service_texts: the rows of the dossiers changed since, as
      int_matching_traveller_names, int_matching_dossier_amounts, int_matching_dossier_keys and
      int_matching_service_texts held them when the table was computed: kept by their strategy (matching_keep_before) the first time it replaces
      a dossier's rows after that, listed in int_matching_before_dossiers, and emptied by the
      post-hook once the candidates have read them. The change log is emptied only after the
      candidates are built (int_matching_changes_applied), so these dossiers are the log's.

    A full build (first build, --full-refresh, a change log holding `everything` or too many
    dossiers, one of these tables missing) rebuilds every line and the tables above. -#}

{% macro matching_relation(name) -%}
    {{- return(api.Relation.create(database=target.database, schema='intermediate', identifier=name)) -}}
{%- endmacro %}

{% macro matching_seen_tables() -%}
    {{- return(['int_matching_seen_lines', 'int_matching_seen_open_amounts', 'int_matching_before_dossiers']
               + matching_before_tables().values() | list) -}}
{%- endmacro %}

{#- The per-dossier tables whose rows before a change the dirty lines compare with. -#}
{% macro matching_before_tables() -%}
    {{- return({'int_matching_traveller_names': 'int_matching_before_names',
                'int_matching_dossier_amounts': 'int_matching_before_amounts',
                'int_matching_dossier_keys': 'int_matching_before_keys',
                'int_matching_service_texts': 'int_matching_before_service_texts'}) -}}
{%- endmacro %}

{#- The rows of `source` (a per-dossier table of matching_before_tables) that differ from its copy
    before the changes since the candidates were computed, both ways (`now`: whether the row is
    the table's now or the copy's), for the dossiers changed since. -#}
{% macro matching_rows_changed(source) -%}
    {%- set before = matching_relation(matching_before_tables()[source]) -%}
    {%- set kept = matching_relation('int_matching_before_dossiers') -%}
    select c.*, true as now
    from (
        select t.* from {{ ref(source) }} as t
        inner join {{ kept }} as k on k.dossier_number = t.dossier_number and k.source = '{{ before.identifier }}'
        except
        select * from {{ before }}
    ) as c
    union all
    select c.*, false
    from (
        select * from {{ before }}
        except
        select t.* from {{ ref(source) }} as t
        inner join {{ kept }} as k on k.dossier_number = t.dossier_number and k.source = '{{ before.identifier }}'
    ) as c
{%- endmacro %}

{#- In the strategy of the per-dossier tables, before their changed dossiers' rows are deleted:
    keep those rows, for the dossiers not kept yet since the candidates last read them. -#}
{% macro matching_keep_before(target) -%}
    {%- set before = matching_before_tables().get(target.identifier) -%}
    {%- set changed = matching_changed_dossiers() -%}
    {%- if before is not none and changed is not none and changed | length > 0 %}
    {%- set kept = matching_relation('int_matching_before_dossiers') %}
    create table if not exists {{ matching_relation(before) }} (like {{ target }});
    create table if not exists {{ kept }} (source text not null, dossier_number text not null,
        primary key (source, dossier_number));
    insert into {{ matching_relation(before) }}
    select * from {{ target }} as t
    where {{ matching_changed('t.dossier_number') }}
        and not exists (
            select 1 from {{ kept }} as k where k.source = '{{ before }}' and k.dossier_number = t.dossier_number
        );
    insert into {{ kept }} (source, dossier_number)
    select '{{ before }}', n from unnest({{ text_array(changed) }}) as n
    on conflict do nothing;
    {%- endif %}
{%- endmacro %}

{#- Whether this build recomputes every line: decided once, by the first model of the chain,
    int_matching_rule_changes (which writes it as its `everything` row, copied by
    int_matching_dirty_lines); the models after it read that row (matching_candidates_everything):
    the strategies below create tables during the build, so asking again could answer otherwise. -#}
{% macro matching_candidates_must_rebuild() -%}
    {%- if not execute or flags.FULL_REFRESH or matching_changed_dossiers() is none -%}
        {{- return(true) -}}
    {%- endif -%}
    {#- to_regclass, not dbt's relation cache: the strategy above creates tables during the build. -#}
    {#- A table missing, or the seen lines without `ruled` (kept since 2026-11-28): built before. #}
    {%- set missing = run_query(
        "select count(*) from unnest(array['"
        ~ (['int_matching_candidates', 'int_matching_open_amounts'] + matching_seen_tables()) | join("','")
        ~ "']) as n where to_regclass('intermediate.' || n) is null"
        ~ " union all select count(*) from (select 1) as o where not exists (select 1 from information_schema.columns"
        ~ " where table_schema = 'intermediate' and table_name = 'int_matching_seen_lines' and column_name = 'ruled')"
    ).columns[0].values() | sum -%}
    {{- return(missing > 0) -}}
{%- endmacro %}

{#- The supplier invoice lines int_matching_rule_changes compares with their seen copies, as a
    relation: the lines the build's snapshot of app.mart_changes names (its triggers log every
    insert, update and delete of a line, replica mode included, and the log keeps a line until a
    build that recomputed its candidates applied it). None for every line: on a full build, with
    var('mart_checks_all') (the weekly build: what a log could ever miss is found there) and when
    the snapshot says `everything` (a TRUNCATE). -#}
{% macro matching_logged_lines() -%}
    {%- if not execute or flags.FULL_REFRESH or var('mart_checks_all') -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set snapshot = ref('int_mart_changes') -%}
    {%- set everything = run_query(
        "select coalesce(bool_or(everything), false) from " ~ snapshot
    ).columns[0].values()[0] -%}
    {{- return(none if everything else snapshot) -}}
{%- endmacro %}

{#- `decided_by`: the model whose `everything` row is read, int_matching_rule_changes for the models
    built before int_matching_dirty_lines (each model refs, and declares, only what runs before it).
    An empty table is a build with nothing to recompute, not everything. A relation rather than a
    name: for a caller that cannot ref it (a generic test's `where`). -#}
{% macro matching_candidates_everything(decided_by='int_matching_dirty_lines') -%}
    {%- if not execute -%}
        {{- return(true) -}}
    {%- endif -%}
    {%- set result = run_query(
        "select coalesce(bool_or(everything), false) from "
        ~ (ref(decided_by) if decided_by is string else decided_by)
    ) -%}
    {{- return(result.columns[0].values()[0]) -}}
{%- endmacro %}

{#- A row of int_matching_dirty_lines for the line of `alias` (a row of the candidates table), as
    a subquery fenced by `offset 0`: looked up per row by the dirty lines' index, never hashed whole
    (the candidates run without nested loops otherwise). -#}
{% macro matching_dirty_line_of(alias) -%}
    select 1 from {{ ref('int_matching_dirty_lines') }} as d
    where d.supplier_code = {{ alias }}.supplier_code and d.invoice_number = {{ alias }}.invoice_number
        and d.line_number = {{ alias }}.line_number
    offset 0
{%- endmacro %}

{% macro matching_dirty_lines_where() -%}
    (supplier_code, invoice_number, line_number) in (
        select supplier_code, invoice_number, line_number from {{ ref('int_matching_dirty_lines') }}
    )
{%- endmacro %}

{#- Every supplier invoice line (or those `lines_where` keeps) as the matching reads it, with the
    keys of its reference, computed as int_matching_candidates and macro matching_rule_ctes
    compute them: `numbers`, the dossier numbers rule 1 looks up (as written or repaired);
    `ref_norm`, what rule 2 compares with a supplier's reference; `near_numbers`, year:digits of
    each number that may be one slip away; `tokens`, the words of the reference (null when it has
    no two letters in a row, as the name clue reads it). -#}
{% macro matching_line_keys(lines_where=none) %}
    select
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        l.kind,
        l.invoice_date,
        l.currency,
        l.reference,
        l.description,
        l.amount_incl_tax,
        r.ref_norm,
        array(
            select f.found[1] from regexp_matches(r.ref_norm, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
            union
            select f.found[1] from regexp_matches(r.ref_fixed, '{{ var("dossier_number_pattern") }}', 'g') as f(found)
        ) as numbers,
        array(
            select m.found[1] || ':' || m.found[2]
            from regexp_matches(r.ref_fixed, '{{ var("dossier_number_near") }}', 'g') as m(found)
        ) as near_numbers,
        case when l.reference ~ '[A-Za-z]{2}' then array(
            select distinct t.token
            from regexp_split_to_table(trim(regexp_replace(app.normalise_text(l.reference), '[^a-z]+', ' ', 'g')), ' ') as t(token)
            where t.token <> ''
        ) end as tokens
    from {{ ref('stg_app__supplier_invoice_lines') }} as l
    cross join lateral (
        select upper(regexp_replace(coalesce(l.reference, ''), '[^A-Za-z0-9]', '', 'g')) as ref_norm
    ) as n
    cross join lateral (
        select
            n.ref_norm,
            regexp_replace(
                translate(n.ref_norm, 'O', '0'), '{{ var("dossier_number_short_year") }}', 'BK20\1\2', 'g'
            ) as ref_fixed
    ) as r
    {% if lines_where is not none %}
    where {{ lines_where }}
    {% endif %}
{% endmacro %}

{#- The seen tables brought to what int_matching_candidates was just computed from: a post-hook
    of the model, so in its transaction (a failed build leaves both as they were). -#}
{% macro matching_seen_sync() -%}
    {%- if not execute -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set lines = matching_relation('int_matching_seen_lines') -%}
    {%- set open_amounts = matching_relation('int_matching_seen_open_amounts') -%}
    {%- set kept = matching_relation('int_matching_before_dossiers') -%}
    {%- set candidates = matching_relation('int_matching_candidates') -%}
    {%- if matching_candidates_everything() %}
        drop table if exists {{ lines }};
        create table {{ lines }} as
        select k.*, r.line_number is not null as ruled
        from ({{ matching_line_keys() }}) as k
        left join {{ candidates }} as r
            on r.supplier_code = k.supplier_code and r.invoice_number = k.invoice_number
            and r.line_number = k.line_number and r.candidate_rank = 1 and r.is_rule;
        create index on {{ lines }} (supplier_code, invoice_number, line_number);
        drop table if exists {{ open_amounts }};
        create table {{ open_amounts }} as select * from {{ ref('int_matching_open_amounts') }};
        create index on {{ open_amounts }} (dossier_number);
        {%- for source, before in matching_before_tables().items() %}
        drop table if exists {{ matching_relation(before) }};
        create table {{ matching_relation(before) }} (like {{ ref(source) }});
        {%- endfor %}
        create table if not exists {{ kept }} (source text not null, dossier_number text not null,
            primary key (source, dossier_number));
    {%- else %}
        -- a few thousand lines: each looked up by its key
        set local enable_nestloop = on;
        delete from {{ lines }} as s
        using {{ ref('int_matching_dirty_lines') }} as d
        where d.line_changed and s.supplier_code = d.supplier_code and s.invoice_number = d.invoice_number
            and s.line_number = d.line_number;
        insert into {{ lines }}
        select k.*, null
        from ({{ matching_line_keys(
            "(l.supplier_code, l.invoice_number, l.line_number) in (select supplier_code, invoice_number, line_number from "
            ~ ref('int_matching_dirty_lines') ~ " where line_changed)"
        ) }}) as k;
        update {{ lines }} as s
        set ruled = exists (
            select 1 from {{ candidates }} as r
            where r.supplier_code = s.supplier_code and r.invoice_number = s.invoice_number
                and r.line_number = s.line_number and r.candidate_rank = 1 and r.is_rule
        )
        from {{ ref('int_matching_dirty_lines') }} as d
        where s.supplier_code = d.supplier_code and s.invoice_number = d.invoice_number
            and s.line_number = d.line_number;
        delete from {{ open_amounts }}
        where dossier_number in (select dossier_number from {{ ref('int_matching_open_amount_changes') }});
        insert into {{ open_amounts }}
        select * from {{ ref('int_matching_open_amounts') }}
        where dossier_number in (select dossier_number from {{ ref('int_matching_open_amount_changes') }});
        {%- for before in matching_before_tables().values() %}
        truncate table {{ matching_relation(before) }};
        {%- endfor %}
    {%- endif %}
    {#- The dirty lines' lookups from what changed, among the lines no rule matched: a changed amount's
        lines, a changed name's. #}
    create index if not exists int_matching_seen_lines_amount on {{ lines }} (supplier_code, currency, amount_incl_tax)
        where not ruled;
    create index if not exists int_matching_seen_lines_tokens on {{ lines }} using gin (tokens) where not ruled;
    truncate table {{ kept }};
    analyze {{ lines }};
{%- endmacro %}

{#- Incremental strategy of int_matching_candidates: the dirty lines' rows replaced by what was
    recomputed for them (a line no longer there loses its rows), or every row when the build
    recomputed everything. The dossiers whose lines moved are logged (matching_log_moved). -#}
{% macro get_incremental_replace_dirty_lines_sql(arg_dict) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- if matching_candidates_everything() %}
    truncate table {{ target }};
    {%- else %}
    create temporary table matching_first_before on commit drop as
    {{ matching_first_of_dirty_lines(target) }};
    delete from {{ target }} as t
    using {{ ref('int_matching_dirty_lines') }} as d
    where t.supplier_code = d.supplier_code and t.invoice_number = d.invoice_number
        and t.line_number = d.line_number;
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }};
    {%- if not matching_candidates_everything() %}
    {{ matching_log_moved(target) }}
    {%- endif %}
{%- endmacro %}

{#- The first candidate of each dirty line: what the billing figures read of the table (the matched
    or suggested dossier, by which rule, with what confidence). -#}
{% macro matching_first_of_dirty_lines(target) -%}
    select t.supplier_code, t.invoice_number, t.line_number, t.dossier_number, t.match_method, t.confidence
    from {{ target }} as t
    inner join {{ ref('int_matching_dirty_lines') }} as d
        on t.supplier_code = d.supplier_code and t.invoice_number = d.invoice_number
        and t.line_number = d.line_number
    where t.candidate_rank = 1
{%- endmacro %}

{#- The dossiers a dirty line moved away from or to (its first candidate before and after this
    build differ), logged in app.mart_changes under this build's invocation id, in the
    candidates' transaction (docs/dbt.md, "Incremental copies of the billing figures"): no write
    names them, yet their billing status, margin and search copies change. The build's copies
    recompute them; int_mart_changes_applied deletes them once the build succeeded. -#}
{% macro matching_log_moved(target) -%}
    insert into {{ matching_mart_changes_log() }} (dossier_number, logged_by)
    select distinct moved.dossier_number, '{{ invocation_id }}'
    from (
        (select * from matching_first_before except select * from ({{ matching_first_of_dirty_lines(target) }}) as a)
        union all
        (select * from ({{ matching_first_of_dirty_lines(target) }}) as n except select * from matching_first_before)
    ) as moved
    where moved.dossier_number is not null;
{%- endmacro %}

{#- app.mart_changes, written by the candidates' strategy and pre-hook: not a source() of the
    model, whose unit tests would then need it as an input. -#}
{% macro matching_mart_changes_log() -%}
    {{- return(api.Relation.create(database=target.database, schema='app', identifier='mart_changes')) -}}
{%- endmacro %}

{#- A pre-hook of int_matching_candidates: when this build computes every line (a first or full
    build, an `everything` in the logs), any dossier's lines may move, so it logs `everything`
    under its invocation id: the build's copies and the searches then read every dossier. -#}
{% macro matching_log_everything() -%}
    {%- if execute and (not is_incremental() or matching_candidates_everything()) -%}
        insert into {{ matching_mart_changes_log() }} (everything, logged_by) values (true, '{{ invocation_id }}')
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
