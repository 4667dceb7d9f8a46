{#- The supplier invoice lines whose candidates an incremental build of int_matching_candidates
    recomputes: every line whose candidates may differ from those in the table, given what
    changed since it was computed (docs/dbt.md, "Incremental candidates"). A line's candidates
    depend on the line, on its invoice's other lines (the sibling clue) and on the dossiers its
    keys find; so a line is recomputed when:

    - line: it is new, changed or gone (int_matching_rule_changes, compared with
      int_matching_seen_lines);
    - candidate: one of its candidates is a dossier the change log names (int_matching_changes)
      whose change touches what that candidate row read, with the line's supplier: the dossier's
      dates or the texts of its services with the supplier (int_matching_dossier_keys,
      int_matching_service_texts), a traveller's name whose last name is a word of the
      reference, an amount equal to the line's (as they are now or were, compared with their
      copies before the change: macro matching_rows_changed), or the dossier gone; a supplement
      of another amount or with another supplier, a payment, a status leave its rows as they
      are (docs/dbt.md, "Candidates touched by a change");
    - number, supplier_reference: a changed dossier's number is in its reference, or the supplier's
      reference of one of its services is the reference (the rules may now name it:
      int_matching_rule_changes);
    - near_number: a changed dossier's number is one slip away from a number of the reference;
    - name: a changed row of a dossier's travellers' names (new, renamed, other dates) has a last
      name that is a word of the reference, the invoice date fitting;
    - amount: a changed amount of a dossier is the line's amount: held (as it is now) or still
      open (as it is now or was: int_matching_open_amount_changes; the open amounts are read only
      by the line's amount, so a dossier whose open amounts alone moved, a new invoice's rules
      having closed them, changes nothing else), and the dossier can matter to the line: it is one
      of its candidates, or the invoice date fits and it may rank among the line's alike
      candidates (a frontier per line, read from the table) or name it, or the line had fewer
      alike candidates the date fits than it keeps;
    - sibling: another line of its invoice now names another dossier by the rules (their rules
      before and now: int_matching_rule_changes), so the invoice's single dossier (the sibling
      clue) changed.

    The clue lookups (near_number, name, amount, sibling) are made for the lines no rule matched
    only: the others have only the rules' candidates. One row with `everything` set instead when
    the build recomputes every line (as int_matching_rule_changes decided). -#}
-- depends_on: {{ ref('int_matching_changes') }}
-- depends_on: {{ ref('int_matching_rule_changes') }}
-- depends_on: {{ ref('int_matching_dossier_keys') }}
-- depends_on: {{ ref('int_matching_traveller_names') }}
-- depends_on: {{ ref('int_matching_dossier_amounts') }}
-- depends_on: {{ ref('int_matching_open_amount_changes') }}
-- depends_on: {{ ref('int_matching_service_texts') }}
-- depends_on: {{ ref('stg_app__dossiers') }}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[{'columns': ['supplier_code', 'invoice_number', 'line_number']}],
    post_hook="analyze {{ this }}"
) }}

{% if matching_candidates_everything('int_matching_rule_changes') %}
select
    null::text as supplier_code,
    null::text as invoice_number,
    null::int as line_number,
    true as everything,
    true as line_changed,
    'everything'::text as reasons
{% else %}
{% set previous = matching_relation('int_matching_candidates') %}
{% set seen_lines = matching_relation('int_matching_seen_lines') %}
with rule_changes as (
    select * from {{ ref('int_matching_rule_changes') }}
),

changed_lines as (
    select supplier_code, invoice_number, line_number from rule_changes where line_changed
),

-- What changed of the dossiers the change log names, as the candidates read it: their rows of the
-- per-dossier tables that differ from the copies kept before the change, both ways.
changed_name_rows as materialized (
    {{ matching_rows_changed('int_matching_traveller_names') }}
),

changed_amount_rows as materialized (
    {{ matching_rows_changed('int_matching_dossier_amounts') }}
),

-- The (dossier, supplier) pairs whose dates, existence or services' labels and references changed:
-- every candidate row of theirs may read differently.
changed_pairs as (
    select dossier_number, supplier_code from ({{ matching_rows_changed('int_matching_dossier_keys') }}) as k
    union
    select dossier_number, supplier_code from ({{ matching_rows_changed('int_matching_service_texts') }}) as t
),

-- A candidate row of a changed dossier reads differently only when the change touches what it read
-- with the line's supplier: a name row (now or before) whose last name the reference holds, an
-- amount row equal to the line's, the pair's dates or texts, or the dossier gone (rule 1).
with_changed_candidate as (
    select distinct p.supplier_code, p.invoice_number, p.line_number
    from {{ previous }} as p
    inner join {{ seen_lines }} as s using (supplier_code, invoice_number, line_number)
    where {{ matching_changed('p.dossier_number') }}
        and (
            (p.dossier_number, p.supplier_code) in (select dossier_number, supplier_code from changed_pairs)
            or exists (
                select 1 from changed_name_rows as n
                where n.dossier_number = p.dossier_number and n.supplier_code = p.supplier_code
                    and n.last_token = any(s.tokens)
            )
            or exists (
                select 1 from changed_amount_rows as a
                where a.dossier_number = p.dossier_number and a.supplier_code = p.supplier_code
                    and a.currency = s.currency and a.amount = s.amount_incl_tax
            )
            or not exists (select 1 from {{ ref('stg_app__dossiers') }} as d where d.dossier_number = p.dossier_number)
        )
),

-- The clues are looked up for the lines no rule matched when the table was computed (a line
-- gaining or losing a rule is recomputed above): those the seen lines mark `not ruled`, indexed
-- for the lookups below, each of which starts from what changed (listing those lines from the
-- table's 1.84 M rule rows took ~15 s of every build at 1,000,000 dossiers, even one with nothing
-- changed).
open_numbers as (
    select o.supplier_code, o.invoice_number, o.line_number,
        split_part(n.near, ':', 1) as year, split_part(n.near, ':', 2) as digits
    from {{ seen_lines }} as o
    cross join unnest(o.near_numbers) as n(near)
    where cardinality(o.near_numbers) > 0 and not o.ruled
),

near_keys as (
    {{ matching_near_keys('open_numbers') }}
),

near_gains as (
    select distinct k.supplier_code, k.invoice_number, k.line_number
    from near_keys as k
    inner join {{ ref('int_matching_dossier_keys') }} as d
        on d.supplier_code = k.supplier_code and d.dossier_key = k.near
    where {{ matching_changed('d.dossier_number') }}
),

changed_names as (
    select distinct supplier_code, last_token, booked_on, last_date
    from changed_name_rows
    where now
),

-- The lines holding a changed name's word, found by the seen lines' index on their words.
name_gains as (
    select distinct o.supplier_code, o.invoice_number, o.line_number
    from {{ seen_lines }} as o
    cross join unnest(o.tokens) as t(token)
    inner join changed_names as n on n.supplier_code = o.supplier_code and n.last_token = t.token
    where not o.ruled and o.tokens && array(select distinct last_token from changed_names)
        and o.invoice_date between n.booked_on - 3 and n.last_date + {{ var('matching_days_after_service') }}
),

-- The amount rows that changed, each with its dossier and the window the invoice date must fit: the
-- changed dossiers' amounts as they are now (a row gone takes away a candidate the line has, found
-- by `candidate`), and the open amounts that moved, now and before (no change log names them).
changed_amounts as (
    select supplier_code, currency, amount, dossier_number, booked_on, last_date, false as open_row
    from changed_amount_rows
    where now
    union all
    select supplier_code, currency, amount, dossier_number, booked_on, last_date, true
    from {{ ref('int_matching_open_amount_changes') }}
),

amount_pairs as materialized (
    select o.supplier_code, o.invoice_number, o.line_number, o.tokens, a.dossier_number, a.booked_on, a.open_row,
        coalesce(
            o.invoice_date between a.booked_on - 3 and a.last_date + {{ var('matching_days_after_service') }}, false
        ) as fits
    from changed_amounts as a
    inner join {{ seen_lines }} as o
        on o.supplier_code = a.supplier_code and o.currency = a.currency and o.amount_incl_tax = a.amount
    where not o.ruled
),

-- Per line carrying one, its alike candidates in the table (those the date fits that the amount
-- alone found, open or only held) and the booking day of the last it kept: a dossier booked
-- before that ranks after the ten kept. Only those rows' dossiers are looked up (the others'
-- booking days are not read).
frontiers as (
    select
        c.supplier_code,
        c.invoice_number,
        c.line_number,
        count(*) filter (where c.amount_exact and c.date_plausible and not c.other_clue) as open_kept,
        min(k.booked_on) filter (where c.amount_exact and c.date_plausible and not c.other_clue) as open_front,
        count(*) filter (where not c.amount_exact and not c.other_clue) as held_kept,
        min(k.booked_on) filter (where not c.amount_exact and not c.other_clue) as held_front
    from (
        select p.*, (p.is_rule or p.near_number or p.name_found or p.sibling_match) as other_clue
        from {{ previous }} as p
        where (p.supplier_code, p.invoice_number, p.line_number) in (
            select supplier_code, invoice_number, line_number from amount_pairs
        )
            and not (p.is_rule or p.near_number or p.name_found or p.sibling_match)
            and (p.date_plausible or not p.amount_exact)
    ) as c
    -- hashed whole (2.9 M rows at 1M, ~2 s), not looked up per row: the 1.1 M lookups the planner
    -- chose on its estimate of a few hundred rows took ~10 s of the daily build (`offset 0` keeps
    -- the index out of reach)
    left join (
        select dossier_number, supplier_code, booked_on from {{ ref('int_matching_dossier_keys') }} offset 0
    ) as k
        on k.dossier_number = c.dossier_number and k.supplier_code = c.supplier_code
    group by c.supplier_code, c.invoice_number, c.line_number
),

-- A changed amount row reaches a line carrying its amount when its dossier is one of the line's
-- candidates (its evidence moves); when the invoice date fits its window and the dossier may rank
-- among the line's alike candidates (the line kept fewer than var('matching_alike_candidates'),
-- or the dossier is booked no earlier than the last kept: it may also change how many hold the
-- amount, which counts only up to two) or, open, names the line with one of its words (a name
-- and an open amount make two clues, kept at any rank); and, open, when the line kept fewer
-- alike candidates the date fits than that (it is then filled with those it does not fit).
amount_gains as (
    select distinct a.supplier_code, a.invoice_number, a.line_number
    from amount_pairs as a
    left join frontiers as f using (supplier_code, invoice_number, line_number)
    where exists (
            select 1 from {{ previous }} as c
            where c.supplier_code = a.supplier_code and c.invoice_number = a.invoice_number
                and c.line_number = a.line_number and c.dossier_number = a.dossier_number
        )
        or (a.fits and (
            coalesce(f.open_kept, 0) < {{ var('matching_alike_candidates') }}
            or coalesce(f.held_kept, 0) < {{ var('matching_alike_candidates') }}
            or a.booked_on >= f.open_front
            or a.booked_on >= f.held_front
            or (a.open_row and exists (
                select 1 from {{ ref('int_matching_traveller_names') }} as n
                where n.dossier_number = a.dossier_number and n.supplier_code = a.supplier_code
                    and n.last_token = any(a.tokens)
            ))
        ))
        or (a.open_row and coalesce(f.open_kept, 0) < {{ var('matching_alike_candidates') }})
),

-- The invoices whose single dossier (the sibling clue of their other lines) may then be another:
-- only the lines whose rules' dossiers differ can change it (a supplement touches many ruled lines,
-- at 1M nearly every invoice holds one, and changes none of their rules).
rules_changed as (
    select supplier_code, invoice_number, line_number
    from rule_changes
    where rules_before <> rules_now
),

touched_invoices as (
    select distinct supplier_code, invoice_number from rules_changed
),

-- The rules' dossiers of those invoices in the table, read by its index on the line.
ruled_before as (
    select r.supplier_code, r.invoice_number, r.line_number, r.dossier_number
    from touched_invoices as i
    inner join {{ previous }} as r on r.supplier_code = i.supplier_code and r.invoice_number = i.invoice_number
    where r.is_rule
),

rules_before as (
    select supplier_code, invoice_number, dossier_number from ruled_before
),

rules_after as (
    select r.supplier_code, r.invoice_number, r.dossier_number
    from ruled_before as r
    where not exists (
        select 1 from rule_changes as t
        where t.supplier_code = r.supplier_code and t.invoice_number = r.invoice_number
            and t.line_number = r.line_number
    )
    union all
    select t.supplier_code, t.invoice_number, d.dossier_number
    from rule_changes as t
    inner join touched_invoices using (supplier_code, invoice_number)
    cross join unnest(t.rules_now) as d(dossier_number)
),

sibling_changed as (
    select i.supplier_code, i.invoice_number
    from touched_invoices as i
    left join (
        select supplier_code, invoice_number,
            case when count(distinct dossier_number) = 1 then min(dossier_number) end as dossier_number
        from rules_before
        group by supplier_code, invoice_number
    ) as b using (supplier_code, invoice_number)
    left join (
        select supplier_code, invoice_number,
            case when count(distinct dossier_number) = 1 then min(dossier_number) end as dossier_number
        from rules_after
        group by supplier_code, invoice_number
    ) as a using (supplier_code, invoice_number)
    where b.dossier_number is distinct from a.dossier_number
),

sibling_gains as (
    select o.supplier_code, o.invoice_number, o.line_number
    from sibling_changed as c
    inner join {{ seen_lines }} as o on o.supplier_code = c.supplier_code and o.invoice_number = c.invoice_number
    where not o.ruled
),

dirty as (
    select supplier_code, invoice_number, line_number, 'line' as reason from changed_lines
    union all
    select supplier_code, invoice_number, line_number, 'candidate' from with_changed_candidate
    union all
    select supplier_code, invoice_number, line_number, 'number' from rule_changes where number_gain
    union all
    select supplier_code, invoice_number, line_number, 'supplier_reference' from rule_changes where reference_gain
    union all
    select supplier_code, invoice_number, line_number, 'near_number' from near_gains
    union all
    select supplier_code, invoice_number, line_number, 'name' from name_gains
    union all
    select supplier_code, invoice_number, line_number, 'amount' from amount_gains
    union all
    select supplier_code, invoice_number, line_number, 'sibling' from sibling_gains
)

select
    supplier_code,
    invoice_number,
    line_number,
    false as everything,
    bool_or(reason = 'line') as line_changed,
    string_agg(distinct reason, ' ' order by reason) as reasons
from dirty
group by supplier_code, invoice_number, line_number
{% endif %}
