"""The offline engine's sentence picking: whole sentences, figures intact, the one that answers."""

from __future__ import annotations

import pytest

from conversations.assistant.offline.passages import Passage, best_sentences, opening, sentences

HOURS_AND_PRICES = (
    "Precios\n"
    "El plan Básico cuesta 19,90 € al mes. El plan Empresa cuesta 49 € al mes por agente e incluye WhatsApp. "
    "Los precios no incluyen IVA.\n"
    "Horario: de lunes a viernes de 9:30 a 18:00. Los sábados abrimos de 10 a 14 h. El domingo cerramos."
)


def test_sentences_end_at_a_stop_before_a_capital_but_not_inside_figures_or_abbreviations():
    assert sentences("Somos Acme S.L. de Madrid. Abrimos a las 9.30 h. Sr. García atiende. ¿Dudas? Llama.") == [
        "Somos Acme S.L. de Madrid.",
        "Abrimos a las 9.30 h.",
        "Sr. García atiende.",
        "¿Dudas?",
        "Llama.",
    ]
    assert sentences("Dr. J. Smith sees children.\n\nPrice: $49.50 per visit.") == [
        "Dr. J. Smith sees children.",
        "Price: $49.50 per visit.",
    ]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("¿Cuánto cuesta el plan para empresas?", "El plan Empresa cuesta 49 € al mes por agente e incluye WhatsApp."),
        ("¿Abren el domingo?", "El domingo cerramos."),
        ("¿Qué precio tiene el plan básico?", "El plan Básico cuesta 19,90 € al mes."),
        ("¿Los precios incluyen IVA?", "Los precios no incluyen IVA."),
        # Two neighbours that answer about as well are quoted together.
        (
            "¿Qué horario tienen los sábados?",
            "Horario: de lunes a viernes de 9:30 a 18:00. Los sábados abrimos de 10 a 14 h.",
        ),
    ],
)
def test_the_sentence_that_answers_is_picked_whole(question, answer):
    assert best_sentences(question, [Passage(HOURS_AND_PRICES, 0)]) == (answer, 0)


def test_the_passage_ranked_lower_wins_when_it_answers_better():
    first = Passage("Nuestra clínica está en Madrid. Tenemos aparcamiento gratuito.", 0)
    second = Passage("Una limpieza dental cuesta 45 euros. El blanqueamiento cuesta 250 euros.", 1)

    assert best_sentences("¿Cuánto cuesta una limpieza dental?", [first, second]) == (
        "Una limpieza dental cuesta 45 euros.",
        1,
    )


def test_no_shared_word_is_no_sentence():
    assert best_sentences("How much is it?", [Passage(HOURS_AND_PRICES, 0)]) == ("", 0)
    assert best_sentences("¿?", [Passage(HOURS_AND_PRICES, 0)]) == ("", 0)


def test_the_opening_skips_the_heading_and_keeps_whole_sentences_within_the_limit():
    assert opening(HOURS_AND_PRICES, 120) == (
        "El plan Básico cuesta 19,90 € al mes. El plan Empresa cuesta 49 € al mes por agente e incluye WhatsApp."
    )
    long = "palabra " * 100
    cut = opening(long, 50)
    assert len(cut) <= 50 and cut.endswith("…") and cut[:-1].split()[-1] == "palabra"
