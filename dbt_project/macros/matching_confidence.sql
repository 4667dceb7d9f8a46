{#- The confidence of a line's best candidate (docs/billing.md, "How a line finds its dossier").
    A rule is certain unless another rule names another dossier: then the runner-up's score is
    taken off. Otherwise the confidence reaches the automatic threshold only when the evidence is
    one an accountant would sign: two or more independent clues agree on the dossier and no other
    dossier has as many, or one telling clue (a number one digit away, a traveller's full name,
    the rest of the invoice, an open amount) and no other dossier with any clue at all. Any
    other combination stays a suggestion, however high its score. -#}
{% macro matching_confidence(score, is_rule, clues, telling_clue, runner_up_score, runner_up_clues) %}
    (case
        when {{ is_rule }} then
            greatest(0, {{ score }} - {{ var('matching_runner_up_weight') }} * coalesce({{ runner_up_score }}, 0))
        when {{ clues }} >= 2 and coalesce({{ runner_up_clues }}, 0) < {{ clues }} then
            least(0.99, 0.93 + 0.02 * {{ clues }})
        when {{ clues }} = 1 and {{ telling_clue }} and coalesce({{ runner_up_clues }}, 0) = 0 then 0.92
        else greatest(0, least({{ score }}, {{ var('matching_scored_ceiling') }})
            - {{ var('matching_runner_up_weight') }} * coalesce({{ runner_up_score }}, 0))
    end)::numeric(5, 4)
{%- endmacro %}
