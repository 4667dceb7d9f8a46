{#- Every dossier a supplier invoice line may belong to, with the evidence for it. A table,
    rebuilt after each ingestion: this is the heavy part (number and name searches), and it does
    not depend on accountants' decisions, which int_invoice_lines__matched applies on top at read
    time so that a decision shows at once.

    Candidates always come from equality joins restricted to the line's supplier, never from a
    cross join. Rules first: (1) a dossier number in the reference, as written or repaired when the
    repair has one reading only (letter O for zero, two-digit year); (2) the supplier's own booking
    reference. The other lines get candidates from clues: a dossier number one slip of a digit
    away, a traveller's name, an amount still open for the dossier, a sibling line of the same
    invoice. How many clues agree, and whether another dossier has as many, gives the confidence
    (macro matching_confidence; docs/billing.md, "How a line finds its dossier"). -#}
{#- No nested loops but the lateral name lookup's: the planner misjudges every CTE below by orders
    of magnitude (1 row for 314,392) and picks nested loops that run a million index lookups;
    hash and merge joins instead: 87 s -> 57 s at 100,000 dossiers (docs/dbt.md). SET LOCAL: the
    hook runs in the model's transaction and ends with it. Analysed once built: the matching view
    reads it at once, and planned on a table without statistics its check took 36 s instead of
    4 s at 300,000 dossiers. No bitmap scans: the lateral last-name lookup must walk its index
    newest first and stop after the few it keeps; the planner, guessing the name filter
    selective, read every dossier of the name booked before the invoice and sorted them instead
    (13 s -> 1.2 s at 100,000 dossiers, 77,900 lookups; docs/dbt.md). -#}
-- depends_on: {{ ref('int_matching_changes') }}
-- depends_on: {{ ref('int_matching_dirty_lines') }}
-- depends_on: {{ ref('int_matching_open_amount_changes') }}
-- depends_on: {{ ref('int_matching_service_texts') }}
{#- Incremental by line (docs/dbt.md, "Incremental candidates"): a build recomputes the lines
    int_matching_dirty_lines names (or every line when it says `everything`), and the strategy
    replace_dirty_lines (macros/matching_candidates_incremental.sql) replaces their rows; the
    post-hook matching_seen_sync keeps what the table was computed from, for the next build. -#}
{% set recompute = is_incremental() and not matching_candidates_everything() %}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_dirty_lines',
    on_schema_change='fail',
    indexes=[
        {'columns': ['supplier_code', 'invoice_number', 'line_number', 'candidate_rank']},
        {'columns': ['dossier_number', 'candidate_rank']},
    ],
    pre_hook=["set local enable_nestloop = off", "set local enable_bitmapscan = off", "{{ matching_log_everything() }}"],
    post_hook=["analyze {{ this }}", "{{ matching_seen_sync() }}"]
) }}

with {{ matching_rule_ctes(lines_where=matching_dirty_lines_where() if recompute else none) }},

open_lines as (
    select l.*
    from repaired as l
    where not exists (
        select 1 from rule_pairs as r
        where r.supplier_code = l.supplier_code and r.invoice_number = l.invoice_number
            and r.line_number = l.line_number
    )
),

-- A dossier number with one slip of a digit: one lost (BK-2026-00123), one extra, one wrong or two
-- swapped. Each reading of the reference one edit away is looked up among the supplier's dossier
-- keys (a b-tree equality join: never a comparison with every dossier). Numbers that close are
-- often several: the clue then names none of them on its own (see the confidence).
reference_numbers as (
    select l.supplier_code, l.invoice_number, l.line_number, m.found[1] as year, m.found[2] as digits
    from open_lines as l
    cross join lateral regexp_matches(l.ref_fixed, '{{ var("dossier_number_near") }}', 'g') as m(found)
),

near_keys as (
    {{ matching_near_keys('reference_numbers') }}
),

by_near_number as (
    select distinct k.supplier_code, k.invoice_number, k.line_number, sd.dossier_number
    from near_keys as k
    inner join {{ ref('int_matching_dossier_keys') }} as sd
        on sd.supplier_code = k.supplier_code and sd.dossier_key = k.near
),

-- The amounts still open per dossier (int_matching_open_amounts, a table indexed per supplier,
-- currency, kind and amount): a line's own are read per line below, the few it keeps, never all
-- the dossiers holding a common amount (docs/dbt.md, "Open amounts read per line").
amount_targets as not materialized (
    select * from {{ ref('int_matching_open_amounts') }}
),

-- Suppliers that invoice dossier by dossier: a line with a useless reference belongs to the
-- dossier the rest of its invoice names, when the invoice names only one.
{% if recompute -%}
-- Recomputing some lines only, the rules' dossiers of the invoice's other lines are the table's:
-- one of them is read, then whether any other names another dossier, each by the candidates'
-- index on the line and stopping at the first (an invoice of a few thousand lines holds hundreds
-- of dossiers; grouping the 1.8 M rule rows of the day's invoices took 8.5 s at 1,000,000
-- dossiers). The subqueries are fenced by `offset 0`, so that the planner keeps them per
-- invoice instead of turning them into joins with the whole table.
single_dossier_invoices as (
    select i.supplier_code, i.invoice_number, i.dossier_number
    from (
        select o.supplier_code, o.invoice_number, coalesce(
            (select min(r.dossier_number) from rule_pairs as r
             where r.supplier_code = o.supplier_code and r.invoice_number = o.invoice_number),
            (select p.dossier_number from {{ this }} as p
             where p.supplier_code = o.supplier_code and p.invoice_number = o.invoice_number and p.is_rule
                and not exists ({{ matching_dirty_line_of('p') }})
             limit 1)
        ) as dossier_number
        from (select distinct supplier_code, invoice_number from open_lines) as o
    ) as i
    where i.dossier_number is not null
        and not exists (
            select 1 from rule_pairs as r
            where r.supplier_code = i.supplier_code and r.invoice_number = i.invoice_number
                and r.dossier_number <> i.dossier_number
            offset 0
        )
        and not exists (
            select 1 from {{ this }} as p
            where p.supplier_code = i.supplier_code and p.invoice_number = i.invoice_number and p.is_rule
                and p.dossier_number <> i.dossier_number
                and not exists ({{ matching_dirty_line_of('p') }})
            offset 0
        )
),
{%- else %}
single_dossier_invoices as (
    select supplier_code, invoice_number, min(dossier_number) as dossier_number
    from rule_pairs
    group by supplier_code, invoice_number
    having count(distinct dossier_number) = 1
),
{%- endif %}

by_sibling as (
    select l.supplier_code, l.invoice_number, l.line_number, s.dossier_number
    from open_lines as l
    inner join single_dossier_invoices as s
        on s.supplier_code = l.supplier_code and s.invoice_number = l.invoice_number
),

-- A traveller's name written in the reference (DUPONT/JEAN, Dupont Jean, LE GALL/THEO): the last
-- name as whole words, and whether the first name of the same traveller is there too, among the
-- supplier's dossiers the invoice date fits (see date_plausible), looked up in
-- int_matching_traveller_names by the first word of the last name. A name is common: the
-- dossiers holding it and nothing else (no other clue) are all alike, so only the
-- var('matching_alike_candidates') most recently booked before the invoice are kept, those with
-- the first name too and those with the last name alone each; every dossier where the name adds
-- to another clue is kept (docs/dbt.md, "Name candidates").
reference_words as (
    select
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        l.invoice_date,
        l.currency,
        l.kind,
        l.amount_incl_tax,
        ' ' || trim(regexp_replace(app.normalise_text(l.reference), '[^a-z]+', ' ', 'g')) || ' ' as words
    from open_lines as l
    where l.reference ~ '[A-Za-z]{2}'
),

reference_tokens as (
    select distinct
        rw.supplier_code, rw.invoice_number, rw.line_number, rw.invoice_date, rw.currency, rw.kind,
        rw.amount_incl_tax, rw.words, t.token
    from reference_words as rw
    cross join lateral regexp_split_to_table(trim(rw.words), ' ') as t(token)
    where t.token <> ''
),

-- A traveller's full name: the last name's first word and the first name's first word are both
-- words of the reference, then both names are checked as words. Every line: one merge join with
-- all the names. Some lines (an incremental build): each pair of words looked up in the names'
-- index on (supplier, last word, first word); sorting the 7.4 M names rows for 73,873 lines took
-- ~20 s of the 1,000,000-dossier daily build (docs/dbt.md, "Full names alike").
full_name_hits as (
    select rt.supplier_code, rt.invoice_number, rt.line_number, n.dossier_number, max(n.booked_on) as booked_on
    from reference_tokens as rt
    inner join reference_tokens as ft
        on ft.supplier_code = rt.supplier_code and ft.invoice_number = rt.invoice_number
        and ft.line_number = rt.line_number
    {% if recompute -%}
    cross join lateral (
        select n.dossier_number, n.booked_on, n.last_date, n.last_name, n.first_name
        from {{ ref('int_matching_traveller_names') }} as n
        where n.supplier_code = rt.supplier_code and n.last_token = rt.token and n.first_token = ft.token
        offset 0
    ) as n
    {%- else -%}
    inner join {{ ref('int_matching_traveller_names') }} as n
        on n.supplier_code = rt.supplier_code and n.last_token = rt.token and n.first_token = ft.token
    {%- endif %}
    where rt.invoice_date between n.booked_on - 3 and n.last_date + {{ var('matching_days_after_service') }}
        and rt.words like '% ' || n.last_name || ' %'
        and rt.words like '% ' || n.first_name || ' %'
    group by rt.supplier_code, rt.invoice_number, rt.line_number, n.dossier_number
),

-- The last name of a dossier another clue already points at (a number one slip away, an open
-- amount the date fits, a sibling line): the name then adds to that clue. A dossier that only
-- holds the amount (not open) is no clue: its name is a last name alone, below.
other_clue_pairs as (
    select supplier_code, invoice_number, line_number, dossier_number from by_near_number
    union
    select supplier_code, invoice_number, line_number, dossier_number from by_sibling
),

-- The open amounts with the last names of their dossiers (one row per dossier and last name), so
-- that a line's amount and a word of its reference are one equality lookup together: a common
-- amount and a common name each name hundreds of dossiers, both at once a few.
{% if recompute -%}
-- Some lines only: the open amounts they carry first, then the names of those dossiers, each
-- looked up by the dossier (an index scan fenced by `offset 0`), kept when a word of the
-- references (158,310 rows for the 1,000,000-dossier daily build's 15,865 lines, against 1.79 M
-- for every line joined and sorted to disk: 18.5 s -> ~2 s).
line_open_amounts as materialized (
    select a.*
    from amount_targets as a
    where (a.supplier_code, a.currency, a.kind, a.amount) in (
        select supplier_code, currency, kind, amount_incl_tax from open_lines
    )
),

amount_names as materialized (
    select a.supplier_code, a.currency, a.kind, a.amount, a.dossier_number, n.last_token, n.last_name,
        n.booked_on, n.last_date
    from line_open_amounts as a
    cross join lateral (
        select n.last_token, n.last_name, n.booked_on, n.last_date
        from {{ ref('int_matching_traveller_names') }} as n
        where n.dossier_number = a.dossier_number and n.supplier_code = a.supplier_code and n.is_first_of_name
        offset 0
    ) as n
    where (a.supplier_code, n.last_token) in (select supplier_code, token from reference_tokens)
),
{%- else -%}
amount_names as materialized (
    select a.supplier_code, a.currency, a.kind, a.amount, a.dossier_number, n.last_token, n.last_name,
        n.booked_on, n.last_date
    from amount_targets as a
    inner join {{ ref('int_matching_traveller_names') }} as n
        on n.dossier_number = a.dossier_number and n.supplier_code = a.supplier_code
    where n.is_first_of_name
),
{%- endif %}

by_name_with_clue as (
    select distinct o.supplier_code, o.invoice_number, o.line_number, o.dossier_number
    from other_clue_pairs as o
    inner join reference_words as rw
        on rw.supplier_code = o.supplier_code and rw.invoice_number = o.invoice_number
        and rw.line_number = o.line_number
    inner join {{ ref('int_matching_traveller_names') }} as n
        on n.supplier_code = o.supplier_code and n.dossier_number = o.dossier_number
    where rw.invoice_date between n.booked_on - 3 and n.last_date + {{ var('matching_days_after_service') }}
        and rw.words like '% ' || n.last_name || ' %'
    union
    select rt.supplier_code, rt.invoice_number, rt.line_number, an.dossier_number
    from reference_tokens as rt
    inner join amount_names as an
        on an.supplier_code = rt.supplier_code and an.currency = rt.currency and an.kind = rt.kind
        and an.amount = rt.amount_incl_tax and an.last_token = rt.token
    where rt.invoice_date between an.booked_on - 3 and an.last_date + {{ var('matching_days_after_service') }}
        and rt.words like '% ' || an.last_name || ' %'
),

-- A full name is rarer than a last name, not unique: in the generated year at 1,000,000 dossiers,
-- 9,636 lines held a full name 213 dossiers the date fits share (median), 2.4 M of the table's
-- 11.4 M rows. Those it names and nothing else are alike (one clue, the same score): the
-- var('matching_alike_candidates') most recently booked are kept, as for a last name alone, and
-- every one where the name adds to another clue (docs/dbt.md, "Name candidates").
by_full_name as (
    {{ matching_alike_kept('full_name_hits', 'by_name_with_clue') }}
    union all
    select h.supplier_code, h.invoice_number, h.line_number, h.dossier_number
    from full_name_hits as h
    where exists (
        select 1 from by_name_with_clue as c
        where c.supplier_code = h.supplier_code and c.invoice_number = h.invoice_number
            and c.line_number = h.line_number and c.dossier_number = h.dossier_number
    )
),

-- Every dossier the full name names, kept or not: none of them is a last name alone below.
name_known as (
    select supplier_code, invoice_number, line_number, dossier_number from full_name_hits
    union
    select supplier_code, invoice_number, line_number, dossier_number from by_name_with_clue
),

name_known_count as (
    select supplier_code, invoice_number, line_number, count(*) as known
    from name_known
    group by supplier_code, invoice_number, line_number
),

-- A last name alone: per word of the reference, the dossiers with a traveller of that last name
-- booked most recently before the invoice, newest first (an index scan that stops early); as
-- many more as the line has dossiers already known above, so that at least
-- var('matching_alike_candidates') of those holding the name alone remain.
last_name_hits as (
    select rt.supplier_code, rt.invoice_number, rt.line_number, h.dossier_number, h.booked_on
    from reference_tokens as rt
    left join name_known_count as k
        on k.supplier_code = rt.supplier_code and k.invoice_number = rt.invoice_number
        and k.line_number = rt.line_number
    cross join lateral (
        select n.dossier_number, n.booked_on
        from {{ ref('int_matching_traveller_names') }} as n
        where n.supplier_code = rt.supplier_code and n.last_token = rt.token and n.is_first_of_name
            and n.booked_on <= rt.invoice_date + 3
            and n.last_date >= rt.invoice_date - {{ var('matching_days_after_service') }}
            and rt.words like '% ' || n.last_name || ' %'
        order by n.booked_on desc, n.dossier_number desc
        limit {{ var('matching_alike_candidates') }} + coalesce(k.known, 0)
    ) as h
),

-- Each dossier once per line (a last name of several travellers, or found under two words), then
-- set apart from those known above on the whole key: the anti-join on part of it (the lookup's
-- output is ordered by line only) rescanned 909 M rows at 1,000,000 dossiers, 205 s of the model.
last_name_dossiers as (
    select supplier_code, invoice_number, line_number, dossier_number, max(booked_on) as booked_on
    from last_name_hits
    group by supplier_code, invoice_number, line_number, dossier_number
),

by_last_name_only as (
    {{ matching_alike_kept('last_name_dossiers', 'name_known') }}
),

by_name as (
    select supplier_code, invoice_number, line_number, dossier_number, bool_or(full_name) as full_name
    from (
        select *, true as full_name from by_full_name
        union all
        select *, false from by_name_with_clue
        union all
        select *, false from by_last_name_only
    ) as n
    group by supplier_code, invoice_number, line_number, dossier_number
),

-- Dossiers found by anything but an amount: kept whatever the amounts say.
other_pairs as (
    select supplier_code, invoice_number, line_number, dossier_number from by_near_number
    union
    select supplier_code, invoice_number, line_number, dossier_number from by_name
    union
    select supplier_code, invoice_number, line_number, dossier_number from by_sibling
),

-- A dossier found another way that holds the line's amount as an open one, the date fitting or not.
amount_on_other as (
    select distinct o.supplier_code, o.invoice_number, o.line_number, o.dossier_number
    from other_pairs as o
    inner join open_lines as l using (supplier_code, invoice_number, line_number)
    inner join amount_targets as a
        on a.dossier_number = o.dossier_number and a.supplier_code = l.supplier_code
        and a.currency = l.currency and a.kind = l.kind and a.amount = l.amount_incl_tax
),

other_count as (
    select supplier_code, invoice_number, line_number, count(*) as others
    from other_pairs
    group by supplier_code, invoice_number, line_number
),

-- Every dossier the invoice date fits holding the line's amount as an open one (an open amount is
-- a clue, and with a name it makes two: above), read from the index most recently booked before
-- the invoice first, as many as can matter: var('matching_alike_candidates') past the dossiers
-- found another way. A common amount is open in many dossiers of a supplier (27 a line on average
-- at 300,000 dossiers, the square of the data in all), and those where it is the only evidence
-- are alike: one clue, the same score, never telling when there are two. As for a last name
-- alone, only var('matching_alike_candidates') of them are kept: those the date fits first, the
-- most recently booked first; then, for a line with fewer, those it does not fit, a dossier with a
-- service of the supplier first, the most recently booked first. The confidence of the line's
-- first candidate is the same as with all of them (docs/dbt.md, "Alike candidates"). Dossiers
-- the date does not fit are no clue and their names do not count: they are read only for the
-- dossiers found another way and to fill up a line's alike candidates.
by_amount as (
    select l.supplier_code, l.invoice_number, l.line_number, a.dossier_number, a.booked_on
    from open_lines as l
    left join other_count as c using (supplier_code, invoice_number, line_number)
    cross join lateral (
        select o.dossier_number, o.booked_on
        from {{ ref('int_matching_open_amounts') }} as o
        where o.supplier_code = l.supplier_code and o.currency = l.currency and o.kind = l.kind
            and o.amount = l.amount_incl_tax
            and o.booked_on <= l.invoice_date + 3
            and o.last_date >= l.invoice_date - {{ var('matching_days_after_service') }}
        order by o.booked_on desc, o.dossier_number desc
        limit {{ var('matching_alike_candidates') }} + coalesce(c.others, 0)
    ) as a
),

fitting_alike as (
    select
        a.supplier_code,
        a.invoice_number,
        a.line_number,
        a.dossier_number,
        row_number() over (
            partition by a.supplier_code, a.invoice_number, a.line_number
            order by a.booked_on desc, a.dossier_number desc
        ) as nth
    from by_amount as a
    where not exists (
        select 1 from other_pairs as o
        where o.supplier_code = a.supplier_code and o.invoice_number = a.invoice_number
            and o.line_number = a.line_number and o.dossier_number = a.dossier_number
    )
),

-- Open lines with fewer fitting alike candidates than are kept, and how many they have (exact
-- below the limit: by_amount read them all).
short_lines as (
    select l.supplier_code, l.invoice_number, l.line_number, l.invoice_date, l.currency, l.kind,
        l.amount_incl_tax, coalesce(f.fitting, 0) as fitting
    from open_lines as l
    left join (
        select supplier_code, invoice_number, line_number, count(*) as fitting
        from fitting_alike
        group by supplier_code, invoice_number, line_number
    ) as f using (supplier_code, invoice_number, line_number)
    where coalesce(f.fitting, 0) < {{ var('matching_alike_candidates') }}
),

unfitting_alike as (
    select
        p.supplier_code,
        p.invoice_number,
        p.line_number,
        p.dossier_number,
        p.fitting,
        row_number() over (
            partition by p.supplier_code, p.invoice_number, p.line_number
            order by k.dossier_number is not null desc, k.booked_on desc nulls last, p.dossier_number desc
        ) as nth
    from (
        select distinct s.supplier_code, s.invoice_number, s.line_number, s.invoice_date, s.fitting, a.dossier_number
        from short_lines as s
        inner join amount_targets as a
            on a.supplier_code = s.supplier_code and a.currency = s.currency and a.kind = s.kind
            and a.amount = s.amount_incl_tax
    ) as p
    left join {{ ref('int_matching_dossier_keys') }} as k
        on k.dossier_number = p.dossier_number and k.supplier_code = p.supplier_code
    where not coalesce(
            p.invoice_date between k.booked_on - 3 and k.last_date + {{ var('matching_days_after_service') }}, false
        )
        and not exists (
            select 1 from other_pairs as o
            where o.supplier_code = p.supplier_code and o.invoice_number = p.invoice_number
                and o.line_number = p.line_number and o.dossier_number = p.dossier_number
        )
),

amount_only as (
    select supplier_code, invoice_number, line_number, dossier_number
    from fitting_alike
    where nth <= {{ var('matching_alike_candidates') }}
    union all
    select supplier_code, invoice_number, line_number, dossier_number
    from unfitting_alike
    where nth <= {{ var('matching_alike_candidates') }} - fitting
),

amount_kept as (
    select supplier_code, invoice_number, line_number, dossier_number from amount_on_other
    union all
    select supplier_code, invoice_number, line_number, dossier_number from amount_only
),

-- Dossiers the date fits that hold the line's amount, open or not (a cancelled service, one
-- already invoiced): the line may be a late or duplicate invoice of it, so an open amount that
-- another dossier holds is no proof. Read per line from the index, most recently booked before
-- the invoice first, and only as many as can matter: var('matching_alike_candidates') that hold
-- it and nothing else (alike: no clue, score 0.3), past those found another way; those holding
-- it as an open one (by_amount's) are passed over in the index scan. A dossier the date does not
-- fit that only holds the amount has no evidence at all (score 0): it is no candidate.
held as (
    select l.supplier_code, l.invoice_number, l.line_number, h.dossier_number, h.booked_on
    from open_lines as l
    left join other_count as c using (supplier_code, invoice_number, line_number)
    cross join lateral (
        select a.dossier_number, a.booked_on
        from {{ ref('int_matching_dossier_amounts') }} as a
        where a.supplier_code = l.supplier_code and a.currency = l.currency and a.amount = l.amount_incl_tax
            and a.booked_on <= l.invoice_date + 3
            and a.last_date >= l.invoice_date - {{ var('matching_days_after_service') }}
            and a.held
            and not exists (
                select 1 from {{ ref('int_matching_open_amounts') }} as o
                where o.supplier_code = a.supplier_code and o.currency = a.currency and o.kind = l.kind
                    and o.amount = a.amount and o.booked_on = a.booked_on and o.dossier_number = a.dossier_number
            )
        order by a.booked_on desc, a.dossier_number desc
        limit {{ var('matching_alike_candidates') }} + coalesce(c.others, 0)
    ) as h
),

held_only as (
    {{ matching_alike_kept('held', 'other_pairs') }}
),

-- How many dossiers the date fits hold the line's amount, open or not: 0, 1 or 2 (two or more,
-- all that matters: an open amount tells only when one dossier holds it). Exact up to 2: both
-- lookups read at least ten whenever there are, and the held one passes over the open ones.
amount_holders as (
    select supplier_code, invoice_number, line_number, least(2, count(*)) as amount_holders
    from (
        select supplier_code, invoice_number, line_number from by_amount
        union all
        select supplier_code, invoice_number, line_number from held
    ) as h
    group by supplier_code, invoice_number, line_number
),

pairs as (
    select supplier_code, invoice_number, line_number, dossier_number,
        case when as_written then 'dossier_number' else 'repaired_number' end as source, false as full_name
    from rule_dossier_number
    union all
    select *, 'supplier_reference', false from rule_supplier_reference
    union all
    select *, 'near_number', false from by_near_number
    union all
    select supplier_code, invoice_number, line_number, dossier_number, 'name', full_name from by_name
    union all
    select *, 'amount', false from amount_kept
    union all
    select *, 'amount_held', false from held_only
    union all
    select *, 'sibling', false from by_sibling
),

evidence as (
    select
        supplier_code,
        invoice_number,
        line_number,
        dossier_number,
        bool_or(source = 'dossier_number') as has_dossier_number,
        bool_or(source = 'repaired_number') as has_repaired_number,
        bool_or(source = 'supplier_reference') as has_supplier_reference,
        bool_or(source = 'near_number') as near_number,
        bool_or(source = 'name') as name_found,
        bool_or(full_name) as full_name,
        bool_or(source = 'sibling') as sibling_match,
        bool_or(source = 'amount') as amount_exact
    from pairs
    group by supplier_code, invoice_number, line_number, dossier_number
),

-- Suppliers repeat the name of what was booked (the hotel, the route, "Transferts Lisbonne") in
-- the line's description: whether one of the dossier's services with that supplier is named there.
labels as (
    select
        e.supplier_code,
        e.invoice_number,
        e.line_number,
        e.dossier_number,
        bool_or(
            ' ' || regexp_replace(app.normalise_text(l.description), '[^a-z0-9]+', ' ', 'g') || ' '
            like '% ' || trim(regexp_replace(app.normalise_text(s.label), '[^a-z0-9]+', ' ', 'g')) || ' %'
        ) as label_found
    from evidence as e
    inner join {{ ref('stg_app__supplier_invoice_lines') }} as l using (supplier_code, invoice_number, line_number)
    inner join {{ ref('stg_app__services') }} as s
        on s.dossier_number = e.dossier_number and s.supplier_code = e.supplier_code
    where e.amount_exact and s.label <> ''
    group by e.supplier_code, e.invoice_number, e.line_number, e.dossier_number
),

features as (
    select
        e.*,
        coalesce(lb.label_found, false) as label_found,
        -- Suppliers invoice after the booking and at the latest some months after the service.
        coalesce(
            l.invoice_date between sd.booked_on - 3 and sd.last_date + {{ var('matching_days_after_service') }},
            false
        ) as date_plausible,
        sd.dossier_number is not null as supplier_in_dossier,
        coalesce(ah.amount_holders, 0) as amount_holders
    from evidence as e
    inner join lines as l using (supplier_code, invoice_number, line_number)
    left join labels as lb using (supplier_code, invoice_number, line_number, dossier_number)
    left join amount_holders as ah using (supplier_code, invoice_number, line_number)
    left join {{ ref('int_matching_dossier_keys') }} as sd
        on sd.dossier_number = e.dossier_number and sd.supplier_code = e.supplier_code
),

-- Independent clues, one per kind: a number that reads as the dossier's, a traveller's name, an
-- open amount, a sibling line. A dossier the supplier has no service in, or that the invoice date
-- does not fit, has no clue that counts; nor has a last name when another dossier of the line has
-- the traveller's full name (DUPONT/JEAN says it is not Marie Dupont's dossier).
clued as (
    select
        *,
        case when supplier_in_dossier and date_plausible then
            near_number::int
            + (full_name or (name_found and not line_has_full_name))::int
            + amount_exact::int
            + sibling_match::int
        else 0 end as clues
    from (
        select
            *,
            bool_or(full_name) over line as line_has_full_name
        from features
        window line as (partition by supplier_code, invoice_number, line_number)
    ) as f
),

scored as (
    select
        supplier_code,
        invoice_number,
        line_number,
        dossier_number,
        case
            when has_dossier_number or has_repaired_number then 'dossier_number'
            when has_supplier_reference then 'supplier_reference'
            else 'suggested'
        end::text as match_method,
        -- Rules are certain when alone (ambiguity is judged across a line's candidates downstream).
        -- Clues add up as independent signals (noisy-or), each weighted by how often it alone
        -- points at the right dossier: the score orders suggestions, the clues decide.
        (case
            when has_dossier_number then 1.0
            when has_repaired_number then 0.99
            when has_supplier_reference then 0.98
            else (1 - (1 - 0.8 * near_number::int)
                * (1 - case when full_name then 0.8 when name_found then 0.6 else 0 end)
                * (1 - 0.85 * sibling_match::int)
                * (1 - 0.6 * amount_exact::int)
                * (1 - 0.3 * date_plausible::int))
                -- a dossier without a service of this supplier is a weaker guess
                * (case when supplier_in_dossier then 1 else 0.5 end)
        end)::numeric(5, 4) as score,
        (has_dossier_number or has_repaired_number or has_supplier_reference) as is_rule,
        clues,
        -- A clue that names one dossier when no other dossier has any: a number one slip away, a
        -- traveller's full name, an amount still open that no other dossier holds, for a service
        -- the description names. A last name is too common to decide alone; the invoice's other
        -- lines too (a supplier's own fee line sits on an invoice about one dossier without
        -- belonging to it).
        (clues > 0 and (near_number or full_name or (amount_exact and amount_holders = 1 and label_found)))
            as telling_clue,
        near_number,
        name_found,
        full_name,
        sibling_match,
        amount_exact,
        amount_holders,
        label_found,
        date_plausible
    from clued
),

-- A rule beats any scored guess; then more agreeing clues beat fewer. Ranked here, once, without
-- decisions; int_invoice_lines__matched re-ranks only the lines an accountant rejected a
-- candidate of, the same way.
ranked as (
    select
        *,
        row_number() over w as candidate_rank,
        case when lead(is_rule) over w = is_rule then lead(score) over w end as runner_up_score,
        case when lead(is_rule) over w = is_rule then lead(clues) over w end as runner_up_clues
    from scored
    window w as (
        partition by supplier_code, invoice_number, line_number
        order by is_rule desc, clues desc, score desc, dossier_number
    )
)

select
    *,
    {{ matching_confidence('score', 'is_rule', 'clues', 'telling_clue', 'runner_up_score', 'runner_up_clues') }}
        as confidence
from ranked
