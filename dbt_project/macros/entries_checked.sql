{#- Daily checks of the journal (docs/dbt.md, "Daily checks of the journal"). The journal is
    append-only: an incremental build numbers the entries it posts after the last number of their
    journal and fiscal year and never writes a posted line again. So what a build's checks have
    to read is the lines numbered after what the last build's checks passed (int_entries__checked,
    built once they have), plus one pass proving the lines up to there are still what was checked.
    At 1,000,000 dossiers the journal holds 6.3 M lines; a day posts some ten thousand. -#}

{#- The journal's last checked state (the relation int_entries__checked), or none for "check every
    line": on a full build (`--full-refresh`), with var('mart_checks_all') (the weekly build), or
    before any build has checked the journal. Read without a ref: the checks of accounting_entries
    run before int_entries__checked is rebuilt, and must see it as the last build left it. -#}
{% macro entries_checked() -%}
    {%- if not execute or flags.FULL_REFRESH or var('mart_checks_all') -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(adapter.get_relation(database=target.database, schema='intermediate', identifier='int_entries__checked')) -}}
{%- endmacro %}

{#- The journal's lines numbered after `checked`'s last number of their journal and fiscal year
    (every line of a journal and year it does not hold; every line when `checked` is none), as a
    query. The journals and years are found by a walk down the index on (journal_code, year,
    entry_number), one probe each, and the lines of each read by a range of that index: no pass
    over the journal. -#}
{% macro entries_since_checked(checked) -%}
    {%- set journal = ref('accounting_entries') -%}
    {%- if checked is none -%}
    select * from {{ journal }}
    {%- else -%}
    with recursive journal_years (journal_code, fiscal_year) as (
        (
            select journal_code, extract(year from entry_date) from {{ journal }}
            order by journal_code, extract(year from entry_date) limit 1
        )
        union all
        select next_year.journal_code, next_year.fiscal_year
        from journal_years as g
        cross join lateral (
            select journal_code, extract(year from entry_date) as fiscal_year from {{ journal }}
            where (journal_code, extract(year from entry_date)) > (g.journal_code, g.fiscal_year)
            order by journal_code, extract(year from entry_date) limit 1
        ) as next_year
    )

    select lines.*
    from journal_years as g
    left join {{ checked }} as c on c.journal_code = g.journal_code and c.fiscal_year = g.fiscal_year
    cross join lateral (
        select * from {{ journal }} as a
        where a.journal_code = g.journal_code and extract(year from a.entry_date) = g.fiscal_year
            and a.entry_number > coalesce(c.last_number, 0)
        offset 0
    ) as lines
    {%- endif -%}
{%- endmacro %}

{#- The last number checked per journal and fiscal year, as a query over `checked` (no rows when
    it is none: every number is after it). -#}
{% macro entries_checked_numbers(checked) -%}
    {%- if checked is none -%}
    select cast(null as text) as journal_code, cast(null as integer) as fiscal_year, 0 as last_number where false
    {%- else -%}
    select journal_code, fiscal_year, last_number from {{ checked }}
    {%- endif -%}
{%- endmacro %}

{#- accounting_entries' post-hook: a journal rebuilt from scratch (`--full-refresh`, alone or not) has
    its lines checked whole by the next build, int_entries__checked emptied in the same transaction
    (what it kept described the journal before). -#}
{% macro entries_checked_forget() -%}
    {%- if should_full_refresh() -%}
        {%- set checked = adapter.get_relation(database=target.database, schema='intermediate', identifier='int_entries__checked') -%}
        {%- if checked is not none -%}
            delete from {{ checked }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
