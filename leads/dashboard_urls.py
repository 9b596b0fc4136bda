"""The supervisors' dashboard: the page, its CSV exports and the pipeline board's move API."""

from django.urls import path

from leads import dashboard

urlpatterns = [
    path("console/dashboard/", dashboard.dashboard, name="dashboard"),
    path("console/dashboard/leads.csv", dashboard.leads_csv, name="dashboard-leads-csv"),
    path("console/dashboard/conversations.csv", dashboard.conversations_csv, name="dashboard-conversations-csv"),
    path("console/api/leads/<int:card_id>/move", dashboard.move, name="dashboard-move"),
]
