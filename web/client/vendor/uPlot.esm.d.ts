// The page loads uPlot's ES module as served by the API (web/dashboard.ts); its types come from the package.
import uPlot from 'uplot';
export default uPlot;
