"""Everything the offline engine says, per locale. Placeholders are filled with str.format."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "greeting": "¡Hola! Soy el asistente virtual de {business}.",
        "greeting_named": "¡Hola! Soy {name}, el asistente virtual de {business}.",
        "out_of_hours": (
            "Ahora mismo el equipo está fuera de horario. Tu conversación queda en cola y una persona te "
            "responderá {back}. Si quieres, déjame tu correo o tu teléfono y te contactamos."
        ),
        "back_at": "el {when}",
        "back_later": "en cuanto vuelva",
        "consent": (
            "Para que el equipo pueda ayudarte y contactarte después, me gustaría guardar tu nombre, tu correo "
            "electrónico, tu teléfono y tu empresa. Solo los usaremos para responder a tu consulta. "
            "¿Estás de acuerdo?"
        ),
        "consent_first": "Antes de guardar ningún dato necesito tu permiso.",
        "consent_short": "¿Me das permiso para guardar tus datos de contacto?",
        "consent_thanks": "¡Gracias!",
        "consent_declined": "Sin problema: no guardaré ningún dato personal.",
        "data_not_stored": "Como preferiste que no guarde datos personales, no he anotado esos.",
        "consent_failed": "Vaya, no he podido registrar tu respuesta.",
        "consent_why": "Solo para que el equipo pueda responderte y hacer seguimiento de tu consulta, nada más. ¿Estás de acuerdo?",
        "how_can_i_help": "¿En qué puedo ayudarte?",
        "anything_else": "¿Puedo ayudarte en algo más?",
        "ask_full_name": "¿Me dices tu nombre completo?",
        "ask_email": "¿Cuál es tu correo electrónico?",
        "ask_phone": "¿Y un teléfono de contacto?",
        "ask_company": "¿En qué empresa trabajas?",
        "nice_to_meet": "Un placer, {name}.",
        "noted_full_name": "Anotado.",
        "noted_email": "¡Perfecto!",
        "noted_phone": "Anotado.",
        "noted_company": "¡Genial!",
        "lead_complete": "¡Gracias, {name}! Ya tengo todo lo que necesito: el equipo se pondrá en contacto contigo muy pronto.",
        "lead_summary": "{who} ha dejado sus datos de contacto para que el equipo le atienda.",
        "skipped": "Sin problema.",
        "not_understood": "Perdona, no te he entendido.",
        "invalid_full_name": "Perdona, no he entendido bien tu nombre. ¿Me lo escribes otra vez?",
        "invalid_email": "Vaya, «{value}» no parece un correo válido. ¿Puedes revisarlo?",
        "invalid_phone": (
            "Vaya, «{value}» no parece un teléfono válido. ¿Puedes escribirlo con el prefijo del país? "
            "Por ejemplo: +34 600 123 456."
        ),
        "invalid_company": "Perdona, no he entendido bien el nombre de tu empresa. ¿Me lo escribes otra vez?",
        "handoff": "Te paso con una persona del equipo: se unirá a esta conversación en breve.",
        "handoff_nobody_online": (
            "He avisado al equipo, pero ahora mismo no hay nadie conectado: tu conversación queda en cola y "
            "una persona te responderá en cuanto se conecte."
        ),
        "handoff_failed": "Vaya, ahora mismo no he podido avisar al equipo. Inténtalo de nuevo en unos minutos, por favor.",
        "handoff_reason": "El contacto ha pedido hablar con una persona.",
        "handoff_reason_unanswered": "El asistente no ha sabido responder: «{question}»",
        "dont_know": "Lo siento, no tengo esa información.",
        "offer_human": "¿Quieres que te pase con una persona del equipo?",
        "offer_declined": "De acuerdo.",
        "answer": "Esto es lo que he encontrado: {snippet}",
        "answer_source": "Fuente: {url}",
        "meeting_ask_when": "¡Claro! ¿Qué día y a qué hora te viene bien?",
        "meeting_ask_time": "¿A qué hora te viene bien el {day}?",
        "meeting_ask_day": "¿Qué día te viene bien a las {time}?",
        "meeting_booked": "¡Hecho! Te he apuntado una reunión el {when}; el equipo te la confirmará.",
        "meeting_noted": "Apunto que te viene bien el {when}. El equipo te confirmará la cita.",
        "meeting_failed": "No he podido reservar ese hueco. ¿Te viene bien otro día u otra hora?",
        "meeting_past": "Esa hora ya ha pasado. ¿Qué otro día y hora te vienen bien?",
        "meeting_topic": "Reunión pedida en el chat",
        "meeting_booked_ask_topic": "¡Hecho! Te he apuntado una reunión el {when}. ¿De qué tema quieres hablar?",
        "meeting_confirm_question": "Te confirmo: reunión el {when} sobre «{topic}». ¿Es correcto?",
        "meeting_confirm_question_untitled": "Te confirmo: reunión el {when}. ¿Es correcto?",
        "meeting_confirmed": "¡Perfecto! Reunión confirmada el {when}.",
        "meeting_cancelled": "De acuerdo, la anulo. ¿Qué otro día y hora te vienen bien?",
        "meeting_topic_named": "Reunión con {name}",
        "you_are_welcome": "¡De nada!",
        "doing_well": "¡Muy bien, gracias!",
        "hello_again": "¡Hola de nuevo!",
        "goodbye": "¡Hasta pronto! Si necesitas algo más, escríbeme cuando quieras.",
        "day": "{weekday} {day} de {month}",
        "when": "{day} a las {time}",
        "when_one": "{day} a la {time}",
        "weekdays": "lunes martes miércoles jueves viernes sábado domingo",
        "months": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    },
    "en": {
        "greeting": "Hi! I'm the virtual assistant of {business}.",
        "greeting_named": "Hi! I'm {name}, the virtual assistant of {business}.",
        "out_of_hours": (
            "Our team is out of hours right now. Your conversation is queued and a person will answer you "
            "{back}. If you like, leave me your email or phone and we'll get in touch."
        ),
        "back_at": "on {when}",
        "back_later": "as soon as they are back",
        "consent": (
            "So that our team can help you and get back to you, I'd like to store your name, email address, "
            "phone number and company. We'll only use them to follow up on your request. Is that OK with you?"
        ),
        "consent_first": "Before I store any details, I need your permission.",
        "consent_short": "May I store your contact details?",
        "consent_thanks": "Thank you!",
        "consent_declined": "No problem: I won't store any personal details.",
        "data_not_stored": "As you preferred that I store no personal details, I haven't noted those.",
        "consent_failed": "Sorry, I couldn't record your answer.",
        "consent_why": "Only so that our team can answer you and follow up on your request, nothing else. Is that OK with you?",
        "how_can_i_help": "How can I help you?",
        "anything_else": "Is there anything else I can help you with?",
        "ask_full_name": "What's your full name?",
        "ask_email": "What's your email address?",
        "ask_phone": "And a phone number we can reach you on?",
        "ask_company": "Which company do you work for?",
        "nice_to_meet": "Nice to meet you, {name}.",
        "noted_full_name": "Got it.",
        "noted_email": "Perfect.",
        "noted_phone": "Got it.",
        "noted_company": "Great.",
        "lead_complete": "Thanks, {name}! That's everything I need: our team will be in touch very soon.",
        "lead_summary": "{who} left their contact details for the team to follow up.",
        "skipped": "No problem.",
        "not_understood": "Sorry, I didn't quite catch that.",
        "invalid_full_name": "Sorry, I didn't quite get your name. Could you type it again?",
        "invalid_email": "Hmm, “{value}” doesn't look like a valid email address. Could you check it?",
        "invalid_phone": (
            "Hmm, “{value}” doesn't look like a valid phone number. Could you write it with the country code? "
            "For example: +44 20 7946 0958."
        ),
        "invalid_company": "Sorry, I didn't quite get your company's name. Could you type it again?",
        "handoff": "I'm passing you to a member of our team: they'll join this conversation shortly.",
        "handoff_nobody_online": (
            "I've let the team know, but nobody is online right now: your conversation is in the queue and a "
            "person will answer as soon as one connects."
        ),
        "handoff_failed": "Sorry, I couldn't reach the team just now. Please try again in a few minutes.",
        "handoff_reason": "The contact asked to talk to a person.",
        "handoff_reason_unanswered": "The assistant could not answer: “{question}”",
        "dont_know": "Sorry, I don't have that information.",
        "offer_human": "Would you like me to put you in touch with someone from our team?",
        "offer_declined": "All right.",
        "answer": "Here's what I found: {snippet}",
        "answer_source": "Source: {url}",
        "meeting_ask_when": "Sure! What day and time suit you?",
        "meeting_ask_time": "What time suits you on {day}?",
        "meeting_ask_day": "Which day suits you at {time}?",
        "meeting_booked": "Done! I've pencilled in a meeting for {when}; our team will confirm it.",
        "meeting_noted": "I've noted that {when} suits you. Our team will confirm the appointment.",
        "meeting_failed": "I couldn't book that slot. Would another day or time work for you?",
        "meeting_past": "That time has already passed. What other day and time suit you?",
        "meeting_topic": "Meeting requested in the chat",
        "meeting_booked_ask_topic": "Done! I've pencilled in a meeting for {when}. What would you like to talk about?",
        "meeting_confirm_question": "To confirm: a meeting on {when} about “{topic}”. Is that right?",
        "meeting_confirm_question_untitled": "To confirm: a meeting on {when}. Is that right?",
        "meeting_confirmed": "Great! Your meeting on {when} is confirmed.",
        "meeting_cancelled": "All right, I've cancelled it. What other day and time suit you?",
        "meeting_topic_named": "Meeting with {name}",
        "you_are_welcome": "You're welcome!",
        "doing_well": "I'm doing well, thanks!",
        "hello_again": "Hello again!",
        "goodbye": "Goodbye! If you need anything else, just write to me here.",
        "day": "{weekday} {day} {month}",
        "when": "{day} at {time}",
        "when_one": "{day} at {time}",
        "weekdays": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
        "months": "January February March April May June July August September October November December",
    },
}
DEFAULT_LOCALE = "es"
