{#- The dossier of every supplier invoice line: accountants' decisions first, then the best
    candidate of int_matching_candidates. A view over that table and the decisions, so a decision
    recorded in app.reconciliation_decisions changes the marts at once, without a dbt run; a line
    ingested after the last build shows as unmatched until the next one.

    One row per line, except a line an accountant split by hand: one row per dossier, each with
    its part of the amount.

    An `unmatch` that supersedes nothing withdraws the automatic match of a line to its dossier:
    that pair is not proposed again and the line is never matched automatically any more (its
    best remaining candidate is at most suggested, else the line is unmatched). Superseding the
    withdrawal (unreconcile) gives the automatic match back.

    Lines nobody decided on (most of them) take their best candidate straight from the table, so a
    reader's filter on one dossier reaches its index; the rules below run for the decided lines only
    (docs/dbt.md, "Views read for one dossier"). -#}
{{ config(schema='intermediate', materialized='view') }}

with lines as not materialized (
    select * from {{ ref('stg_app__supplier_invoice_lines') }}
),

-- Lines with a decision in force: only they need the rules below.
decided_lines as (
    select distinct supplier_code, invoice_number, line_number
    from {{ ref('stg_app__reconciliation_decisions') }}
    where is_current
),

-- A line nobody decided on is its best candidate's, automatically at or above the threshold,
-- suggested above the floor.
undecided as (
    select
        c.supplier_code, c.invoice_number, c.line_number,
        c.dossier_number,
        l.kind, l.invoice_date, l.currency,
        l.amount_incl_tax,
        c.match_method,
        c.confidence,
        case when c.confidence >= {{ var('matching_auto_threshold') }} then 'auto_matched' else 'suggested' end
            as state
    from {{ ref('int_matching_candidates') }} as c
    inner join lines as l using (supplier_code, invoice_number, line_number)
    where c.candidate_rank = 1
        and c.confidence >= {{ var('matching_suggestion_floor') }}
        and not exists (
            select 1 from decided_lines as d
            where d.supplier_code = c.supplier_code and d.invoice_number = c.invoice_number
                and d.line_number = c.line_number
        )
),

-- ... else unmatched.
undecided_unmatched as (
    select
        l.supplier_code, l.invoice_number, l.line_number,
        cast(null as text) as dossier_number,
        l.kind, l.invoice_date, l.currency,
        l.amount_incl_tax,
        cast(null as text) as match_method,
        0 as confidence,
        'unmatched' as state
    from lines as l
    where not exists (
        select 1 from {{ ref('int_matching_candidates') }} as c
        where c.supplier_code = l.supplier_code and c.invoice_number = l.invoice_number
            and c.line_number = l.line_number and c.candidate_rank = 1
            and c.confidence >= {{ var('matching_suggestion_floor') }}
    )
        and not exists (
            select 1 from decided_lines as d
            where d.supplier_code = l.supplier_code and d.invoice_number = l.invoice_number
                and d.line_number = l.line_number
        )
),

decided_line_rows as (
    select l.* from lines as l inner join decided_lines using (supplier_code, invoice_number, line_number)
),

-- Per line and dossier, the latest decision still in force says what the accountant thinks.
pair_decisions as (
    select distinct on (supplier_code, invoice_number, line_number, dossier_number) *
    from {{ ref('stg_app__reconciliation_decisions') }}
    where is_current
    order by supplier_code, invoice_number, line_number, dossier_number, decided_at desc, decision_id desc
),

manual as (
    select * from pair_decisions where decision = 'manual'
),

confirmed as (
    select distinct on (p.supplier_code, p.invoice_number, p.line_number) p.*
    from pair_decisions as p
    where p.decision = 'confirm'
        and not exists (
            select 1 from manual as m
            where m.supplier_code = p.supplier_code and m.invoice_number = p.invoice_number
                and m.line_number = p.line_number
        )
    order by p.supplier_code, p.invoice_number, p.line_number, p.decided_at desc, p.decision_id desc
),

rejected as (
    select * from pair_decisions where decision = 'reject'
),

withdrawn as (
    select supplier_code, invoice_number, line_number, dossier_number
    from {{ ref('stg_app__reconciliation_decisions') }}
    where is_current and decision = 'unmatch' and supersedes_id is null
),

-- Pairs never to propose again: rejected ones and withdrawn automatic matches.
excluded as (
    select supplier_code, invoice_number, line_number, dossier_number from rejected
    union
    select supplier_code, invoice_number, line_number, dossier_number from withdrawn
),

-- Lines with an excluded pair: only those are ranked again, without those pairs, the same way
-- int_matching_candidates ranks them all.
rejected_lines as (
    select distinct supplier_code, invoice_number, line_number from excluded
),

withdrawn_lines as (
    select distinct supplier_code, invoice_number, line_number from withdrawn
),

reranked as (
    select
        c.supplier_code, c.invoice_number, c.line_number, c.dossier_number, c.match_method, c.score,
        c.is_rule, c.clues, c.telling_clue,
        row_number() over w as candidate_rank,
        case when lead(c.is_rule) over w = c.is_rule then lead(c.score) over w end as runner_up_score,
        case when lead(c.is_rule) over w = c.is_rule then lead(c.clues) over w end as runner_up_clues
    from {{ ref('int_matching_candidates') }} as c
    inner join rejected_lines as rl using (supplier_code, invoice_number, line_number)
    where not exists (
        select 1 from excluded as r
        where r.supplier_code = c.supplier_code and r.invoice_number = c.invoice_number
            and r.line_number = c.line_number and r.dossier_number = c.dossier_number
    )
    window w as (
        partition by c.supplier_code, c.invoice_number, c.line_number
        order by c.is_rule desc, c.clues desc, c.score desc, c.dossier_number
    )
),

proposals as (
    select c.supplier_code, c.invoice_number, c.line_number, c.dossier_number, c.match_method, c.confidence
    from {{ ref('int_matching_candidates') }} as c
    inner join decided_lines using (supplier_code, invoice_number, line_number)
    where c.candidate_rank = 1
        and not exists (
            select 1 from rejected_lines as rl
            where rl.supplier_code = c.supplier_code and rl.invoice_number = c.invoice_number
                and rl.line_number = c.line_number
        )
    union all
    select
        supplier_code, invoice_number, line_number, dossier_number, match_method,
        {{ matching_confidence('score', 'is_rule', 'clues', 'telling_clue', 'runner_up_score', 'runner_up_clues') }}
    from reranked
    where candidate_rank = 1
),

decided as (
    select
        l.supplier_code, l.invoice_number, l.line_number,
        m.dossier_number,
        l.kind, l.invoice_date, l.currency,
        coalesce(m.amount_incl_tax, l.amount_incl_tax) as amount_incl_tax,
        'manual' as match_method,
        1.0 as confidence,
        'confirmed' as state
    from decided_line_rows as l
    inner join manual as m using (supplier_code, invoice_number, line_number)
    union all
    select
        l.supplier_code, l.invoice_number, l.line_number,
        c.dossier_number,
        l.kind, l.invoice_date, l.currency,
        l.amount_incl_tax,
        coalesce(p.match_method, 'manual'),
        1.0,
        'confirmed'
    from decided_line_rows as l
    inner join confirmed as c using (supplier_code, invoice_number, line_number)
    left join proposals as p
        on p.supplier_code = c.supplier_code and p.invoice_number = c.invoice_number
        and p.line_number = c.line_number and p.dossier_number = c.dossier_number
),

proposed as (
    select
        l.supplier_code, l.invoice_number, l.line_number,
        case
            when p.confidence >= {{ var('matching_suggestion_floor') }} then p.dossier_number
            when r.dossier_number is not null then r.dossier_number
        end as dossier_number,
        l.kind, l.invoice_date, l.currency,
        l.amount_incl_tax,
        case when p.confidence >= {{ var('matching_suggestion_floor') }} then p.match_method end as match_method,
        case when p.confidence >= {{ var('matching_suggestion_floor') }} then p.confidence else 0 end as confidence,
        case
            when p.confidence >= {{ var('matching_auto_threshold') }} and w.line_number is null then 'auto_matched'
            when p.confidence >= {{ var('matching_suggestion_floor') }} then 'suggested'
            -- nothing left after a rejection: say so, with the dossier that was refused
            when r.dossier_number is not null then 'rejected'
            else 'unmatched'
        end as state
    from decided_line_rows as l
    left join proposals as p using (supplier_code, invoice_number, line_number)
    left join withdrawn_lines as w using (supplier_code, invoice_number, line_number)
    left join lateral (
        select x.dossier_number from rejected as x
        where x.supplier_code = l.supplier_code and x.invoice_number = l.invoice_number
            and x.line_number = l.line_number
        order by x.decided_at desc, x.decision_id desc
        limit 1
    ) as r on true
    where not exists (
        select 1 from decided as d
        where d.supplier_code = l.supplier_code and d.invoice_number = l.invoice_number
            and d.line_number = l.line_number
    )
),

matched as (
    select * from undecided
    union all
    select * from undecided_unmatched
    union all
    select * from decided
    union all
    select * from proposed
)

select
    m.supplier_code,
    m.invoice_number,
    m.line_number,
    m.kind,
    m.invoice_date,
    m.currency,
    m.amount_incl_tax::numeric(14, 2) as amount_incl_tax,
    (case when m.kind = 'credit_note' then -m.amount_incl_tax else m.amount_incl_tax end)::numeric(14, 2)
        as signed_amount_incl_tax,
    m.dossier_number,
    m.match_method,
    m.confidence::numeric(5, 4) as confidence,
    m.state,
    -- What counts in invoiced_amount (outputs.md): a suggestion waits for an accountant.
    m.state in ('auto_matched', 'confirmed') as is_counted
from matched as m
